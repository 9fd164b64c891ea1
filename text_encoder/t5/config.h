// T5 encoder configuration (transformers T5Config fields the encoder uses). Member defaults are
// transformers' T5Config defaults, so a config.json missing a key means what it means to transformers;
// the FLUX text encoder is the preset t5_v1_1_xxl().
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "weights/name_map.h"

namespace te::t5 {

// The FFN's activation (transformers ACT2FN name in the comment).
enum class Activation {
  GeluTanh,  // "gelu_new" / "gelu_pytorch_tanh"; "gated-gelu" means this one
  GeluErf,   // "gelu"
  Silu,      // "silu" / "swish"
};

struct Config {
  int64_t vocab_size = 32128;
  int64_t d_model = 512;
  int64_t d_kv = 64;  // per-head width; heads·d_kv need not equal d_model
  int64_t num_heads = 8;
  int64_t d_ff = 2048;
  int64_t num_layers = 6;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  float layer_norm_epsilon = 1e-6f;
  std::string feed_forward_proj = "relu";  // "[gated-]<act>", as transformers spells it

  // google/t5-v1_1-xxl, FLUX's text_encoder_2 (models.md §1.7).
  static Config t5_v1_1_xxl();

  // From a T5Config.to_dict() / config.json object; absent keys keep transformers' defaults.
  static rt::Result<Config> from_transformers_json(const nlohmann::json& j);
  // Dimensions from tensor shapes only (canonical names, see names.cpp). The activation is not
  // visible in shapes: a gated FFN is taken as v1.1's "gated-gelu".
  static rt::Result<Config> from_checkpoint(const weights::MappedStore& store);

  bool is_gated() const;  // "gated-..." : wi_0 (activated) ⊙ wi_1
  // The activation, or an error for one ditrun does not implement (e.g. the original T5's "relu").
  rt::Result<Activation> activation() const;
  rt::Status validate() const;
  std::string str() const;  // one line for logs
};

// Canonical (transformers T5EncoderModel) names from a checkpoint's names: the embedding may be stored
// as `shared.weight` or `encoder.embed_tokens.weight` (tied copies; either or both); the decoder and
// lm_head of a full T5ForConditionalGeneration file are ignored, as T5EncoderModel ignores them.
weights::NameMap name_map(const weights::TensorStore& store);

}  // namespace te::t5
