// CLIP text tower configuration (transformers CLIPTextConfig fields the text model uses). Member
// defaults are transformers' CLIPTextConfig defaults; FLUX's text encoder is clip_vit_large_patch14().
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "weights/name_map.h"

namespace te::clip {

enum class Activation {
  QuickGelu,  // "quick_gelu": x·σ(1.702x) (OpenAI CLIP)
  GeluErf,    // "gelu"
  GeluTanh,   // "gelu_new" / "gelu_pytorch_tanh"
};

struct Config {
  int64_t vocab_size = 49408;
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 8;
  int64_t max_position_embeddings = 77;
  std::string hidden_act = "quick_gelu";
  float layer_norm_eps = 1e-5f;
  // Pooling follows transformers: eos_token_id == 2 is the legacy value of the OpenAI configs and
  // means "position of the largest id"; any other value means "first position holding that id".
  int64_t eos_token_id = 49407;
  int64_t bos_token_id = 49406;
  int64_t pad_token_id = 1;

  // openai/clip-vit-large-patch14 text tower, as in FLUX's text_encoder/config.json (legacy eos 2).
  static Config clip_vit_large_patch14();

  // From a CLIPTextConfig dict, or a full CLIPConfig dict (then its "text_config" is used); absent
  // keys keep transformers' defaults.
  static rt::Result<Config> from_transformers_json(const nlohmann::json& j);
  // Dimensions from tensor shapes (canonical names, see name_map()). Shapes do not show the head
  // count, activation or token ids: heads = hidden/64 (every released CLIP text tower), and the rest
  // come from clip_vit_large_patch14().
  static rt::Result<Config> from_checkpoint(const weights::MappedStore& store);

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  rt::Result<Activation> activation() const;
  rt::Status validate() const;
  std::string str() const;
};

// Canonical names are transformers 5's CLIPTextModel keys (embeddings.*, encoder.layers.N.*,
// final_layer_norm.*). Files of CLIPTextModel from older transformers / diffusers carry a
// "text_model." prefix, which is stripped. Ignored: text_projection.weight and logit_scale
// (CLIPTextModelWithProjection / CLIPModel heads; FLUX uses pooler_output unprojected),
// embeddings.position_ids (a buffer), and the vision tower of a full CLIPModel file
// (vision_model.*, visual_projection.weight).
weights::NameMap name_map(const weights::TensorStore& store);

}  // namespace te::clip
