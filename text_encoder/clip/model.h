// CLIP text tower (transformers CLIPTextModel): token + position embeddings, pre-LN causal
// transformer, final LayerNorm, EOS pooling. B batch, T tokens, C hidden, H heads, Dh head dim, F mlp.
#pragma once
#include <optional>
#include <vector>

#include "context.h"
#include "nn/layers.h"
#include "text_encoder/clip/config.h"
#include "weights/name_map.h"

namespace te::clip {

struct ClipAttention {
  rt::nn::Linear q_proj, k_proj, v_proj, out_proj;  // [C, C] + bias [C] each
};

struct ClipMlp {
  rt::nn::Linear fc1;  // [F, C]
  rt::nn::Linear fc2;  // [C, F]
};

struct ClipEncoderLayer {
  rt::nn::LayerNorm layer_norm1;
  ClipAttention self_attn;
  rt::nn::LayerNorm layer_norm2;
  ClipMlp mlp;
};

struct ClipTextOutput {
  rt::Tensor last_hidden_state;  // [B, T, C], after final_layer_norm
  rt::Tensor pooler_output;      // [B, C], last_hidden_state at each row's EOS position
};

class ClipTextEncoder {
 public:
  // Reads every tensor through `w` (canonical names, see name_map()) and checks the checkpoint
  // strictly: w.finish() errors on anything missing, wrong-shaped or unexpected.
  static rt::Result<ClipTextEncoder> load(const weights::WeightLoader& w, const Config& cfg);
  // Opens `store` through name_map(); config from `cfg` when given, else inferred from shapes.
  // `place`: load onto that context's device and dtype (default: CPU f32).
  static rt::Result<ClipTextEncoder> from_store(weights::TensorStore store, std::optional<Config> cfg = std::nullopt,
                                     const rt::Context* place = nullptr);

  // input_ids [B, T] int64, T <= max_position_embeddings. Causal attention, no padding mask (FLUX
  // passes none).
  ClipTextOutput forward(const rt::Context& ctx, const rt::Tensor& input_ids) const;
  // Per row, the position pooled (transformers' rule, see Config::eos_token_id). A row without the
  // EOS id pools position 0, as torch's argmax over an all-false row does.
  std::vector<int64_t> eos_positions(const rt::Tensor& input_ids) const;

  const Config& config() const { return cfg_; }

 private:
  rt::Tensor layer_forward(const rt::Context& ctx, const ClipEncoderLayer& l, const rt::Tensor& x, int index) const;

  Config cfg_;
  Activation act_ = Activation::QuickGelu;
  rt::Tensor token_embedding;     // embeddings.token_embedding.weight [V, C]
  rt::Tensor position_embedding;  // embeddings.position_embedding.weight [P, C]
  std::vector<ClipEncoderLayer> layers;  // encoder.layers.N
  rt::nn::LayerNorm final_layer_norm;
};

}  // namespace te::clip
