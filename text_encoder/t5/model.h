// T5 encoder (transformers T5EncoderModel), as FLUX uses it: no attention mask, relative position
// bias from block 0 shared by all layers, unscaled dot products, RMS ("T5") layer norms, gated FFN.
// B batch, T tokens, C d_model, H heads, Dh d_kv, F d_ff, NB relative-attention buckets.
#pragma once
#include <memory>
#include <optional>
#include <vector>

#include "context.h"
#include "nn/layers.h"
#include "text_encoder/t5/config.h"
#include "weights/name_map.h"

namespace te::t5 {

// The bidirectional bucket of a relative position n = key − query, bit-identical to transformers'
// T5Attention._relative_position_bucket (its log term is float32 math, truncated toward zero).
int64_t relative_position_bucket(int64_t relative_position, int64_t num_buckets, int64_t max_distance);

struct T5Attention {
  rt::nn::Linear q, k, v, o;                   // [H·Dh, C] ×3, [C, H·Dh], no bias
  rt::Tensor relative_attention_bias;          // [NB, H]; block 0 only
};

struct T5DenseActDense {
  rt::nn::Linear wi_0, wi_1;  // gated: act(wi_0 x) ⊙ wi_1 x, [F, C] each
  rt::nn::Linear wi;          // not gated: act(wi x), [F, C]
  rt::nn::Linear wo;          // [C, F]
};

struct T5Block {
  rt::nn::RMSNorm layer_0_layer_norm;  // layer.0.layer_norm
  T5Attention layer_0_SelfAttention;   // layer.0.SelfAttention
  rt::nn::RMSNorm layer_1_layer_norm;  // layer.1.layer_norm
  T5DenseActDense layer_1_DenseReluDense;
};

class T5Encoder {
 public:
  // Reads every tensor through `w` (canonical names, see name_map()) and checks the checkpoint
  // strictly: w.finish() errors on anything missing, wrong-shaped or unexpected.
  static rt::Result<T5Encoder> load(const weights::WeightLoader& w, const Config& cfg);
  // Opens `store` through name_map(); config from `cfg` when given, else inferred from shapes.
  // `place`: load onto that context's device and dtype (default: CPU f32).
  static rt::Result<T5Encoder> from_store(weights::TensorStore store, std::optional<Config> cfg = std::nullopt,
                                     const rt::Context* place = nullptr);

  // input_ids [B, T] int64 -> last_hidden_state [B, T, C], float32. No attention mask: every token,
  // padding included, attends to every token (FLUX passes none).
  rt::Tensor forward(const rt::Context& ctx, const rt::Tensor& input_ids) const;
  // The relative position bias for T tokens, [H, T, T] (block 0's table; reused by every block).
  rt::Tensor position_bias(const rt::Context& ctx, int64_t T) const;

  const Config& config() const { return cfg_; }

 private:
  rt::Tensor block_forward(const rt::Context& ctx, const T5Block& blk, const rt::Tensor& x, const rt::Tensor& bias,
                           int layer) const;
  rt::Tensor ffn(const rt::Context& ctx, const T5DenseActDense& ff, const rt::Tensor& h) const;

  Config cfg_;
  Activation act_ = Activation::GeluTanh;
  rt::Tensor shared;  // [V, C], the token embedding
  std::vector<T5Block> block;
  rt::nn::RMSNorm final_layer_norm;
};

}  // namespace te::t5
