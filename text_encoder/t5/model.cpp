// T5 encoder forward. Ref: transformers 5.24.0 models/t5/modeling_t5.py (T5Attention,
// T5LayerNorm, T5DenseGatedActDense, T5Stack); models.md §1.7.
// B batch, T tokens, C d_model, H heads, Dh d_kv, F d_ff, NB relative-attention buckets.
#include "text_encoder/t5/model.h"

#include <algorithm>
#include <cmath>

#include "sparse_attention/attention.h"

namespace te::t5 {

int64_t relative_position_bucket(int64_t relative_position, int64_t num_buckets, int64_t max_distance) {
  // Bidirectional: half the buckets for keys after the query, half for keys before it.
  const int64_t half = num_buckets / 2;
  int64_t bucket = relative_position > 0 ? half : 0;
  const int64_t n = relative_position < 0 ? -relative_position : relative_position;
  const int64_t max_exact = half / 2;
  if (n < max_exact) return bucket + n;
  // torch computes log(n / max_exact) / log(max_distance / max_exact) · (half − max_exact) on a float32
  // tensor (the Python double divisor rounds to float32), then truncates; the same float32 steps give
  // the same buckets (checked against torch for |n| ≤ 20000 and several bucket/distance settings).
  float r = std::log(float(n) / float(max_exact));
  r = r / float(std::log(double(max_distance) / double(max_exact)));
  r = r * float(half - max_exact);
  const int64_t large = std::min<int64_t>(max_exact + int64_t(r), half - 1);
  return bucket + large;
}

static rt::nn::Linear linear_no_bias(const weights::WeightLoader& w, const std::string& name, int64_t out, int64_t in) {
  return {w.get(name + ".weight", {out, in}), {}};
}

rt::Result<T5Encoder> T5Encoder::load(const weights::WeightLoader& w, const Config& cfg) {
  RT_TRY(cfg.validate());
  T5Encoder m;
  m.cfg_ = cfg;
  RT_ASSIGN(m.act_, cfg.activation());
  const int64_t C = cfg.d_model, inner = cfg.num_heads * cfg.d_kv, F = cfg.d_ff;
  const float eps = cfg.layer_norm_epsilon;
  m.shared = w.get("shared.weight", {cfg.vocab_size, C});
  const weights::WeightLoader enc = w.pp("encoder");
  for (int64_t i = 0; i < cfg.num_layers; ++i) {
    const weights::WeightLoader b = enc.pp("block", int(i));
    const weights::WeightLoader sa = b.pp("layer.0.SelfAttention"), ff = b.pp("layer.1.DenseReluDense");
    T5Block blk;
    blk.layer_0_layer_norm = {b.get("layer.0.layer_norm.weight", {C}), eps};
    blk.layer_0_SelfAttention.q = linear_no_bias(sa, "q", inner, C);
    blk.layer_0_SelfAttention.k = linear_no_bias(sa, "k", inner, C);
    blk.layer_0_SelfAttention.v = linear_no_bias(sa, "v", inner, C);
    blk.layer_0_SelfAttention.o = linear_no_bias(sa, "o", C, inner);
    if (i == 0)  // has_relative_attention_bias only in block 0 (T5Stack: bool(i == 0))
      blk.layer_0_SelfAttention.relative_attention_bias =
          sa.get("relative_attention_bias.weight", {cfg.relative_attention_num_buckets, cfg.num_heads});
    blk.layer_1_layer_norm = {b.get("layer.1.layer_norm.weight", {C}), eps};
    if (cfg.is_gated()) {
      blk.layer_1_DenseReluDense.wi_0 = linear_no_bias(ff, "wi_0", F, C);
      blk.layer_1_DenseReluDense.wi_1 = linear_no_bias(ff, "wi_1", F, C);
    } else {
      blk.layer_1_DenseReluDense.wi = linear_no_bias(ff, "wi", F, C);
    }
    blk.layer_1_DenseReluDense.wo = linear_no_bias(ff, "wo", C, F);
    m.block.push_back(std::move(blk));
  }
  m.final_layer_norm = {enc.get("final_layer_norm.weight", {C}), eps};
  RT_TRY(w.finish());
  return m;
}

rt::Result<T5Encoder> T5Encoder::from_store(weights::TensorStore store, std::optional<Config> cfg,
                                            const rt::Context* place) {
  const weights::NameMap map = name_map(store);
  RT_ASSIGN(std::shared_ptr<weights::MappedStore> mapped, weights::MappedStore::create(std::move(store), map));
  if (!cfg) {
    RT_ASSIGN(Config inferred, Config::from_checkpoint(*mapped));
    cfg = inferred;
  }
  weights::WeightLoader w(mapped, "t5_encoder");
  if (place) w.place(*place);
  return load(w, *cfg);
}

rt::Tensor T5Encoder::position_bias(const rt::Context& ctx, int64_t T) const {
  std::vector<int64_t> buckets(size_t(T * T));
  for (int64_t i = 0; i < T; ++i)      // query (context) position
    for (int64_t j = 0; j < T; ++j)    // key (memory) position
      buckets[size_t(i * T + j)] =
          relative_position_bucket(j - i, cfg_.relative_attention_num_buckets, cfg_.relative_attention_max_distance);
  const rt::Tensor ids = rt::to_ctx(ctx, rt::Tensor::from_vector_i64(buckets, {T, T}));
  const rt::Tensor values = rt::embedding(ctx, ids, block[0].layer_0_SelfAttention.relative_attention_bias);  // [T, T, H]
  return rt::contiguous(ctx, values.permute({2, 0, 1}));                                                            // [H, T, T]
}

rt::Tensor T5Encoder::ffn(const rt::Context& ctx, const T5DenseActDense& ff, const rt::Tensor& h) const {
  auto act = [&](const rt::Tensor& x) {
    if (act_ == Activation::GeluErf) return rt::gelu_erf(ctx, x);
    if (act_ == Activation::Silu) return rt::silu(ctx, x);
    return rt::gelu_tanh(ctx, x);
  };
  const rt::Tensor hidden = cfg_.is_gated() ? rt::mul(ctx, act(ff.wi_0(ctx, h)), ff.wi_1(ctx, h))  // [B, T, F]
                                            : act(ff.wi(ctx, h));
  return ff.wo(ctx, hidden);  // [B, T, C]
}

rt::Tensor T5Encoder::block_forward(const rt::Context& ctx, const T5Block& blk, const rt::Tensor& x,
                                    const rt::Tensor& bias, int layer) const {
  const int64_t B = x.size(0), T = x.size(1), H = cfg_.num_heads, Dh = cfg_.d_kv;
  const T5Attention& sa = blk.layer_0_SelfAttention;
  const rt::Tensor h = blk.layer_0_layer_norm(ctx, x);  // [B, T, C]
  sattn::AttentionParams p;
  p.q = sa.q(ctx, h).view({B, T, H, Dh});
  p.k = sa.k(ctx, h).view({B, T, H, Dh});
  p.v = sa.v(ctx, h).view({B, T, H, Dh});
  p.scale = 1.f;  // T5 folds the 1/sqrt(d) into its initialisation and never scales scores
  p.bias = bias;  // [H, T, T]
  p.layer_index = layer;
  const rt::Tensor attn = sattn::attention(ctx, p).view({B, T, H * Dh});  // [B, T, H·Dh]
  const rt::Tensor x1 = rt::add(ctx, x, sa.o(ctx, attn));                // [B, T, C]
  return rt::add(ctx, x1, ffn(ctx, blk.layer_1_DenseReluDense, blk.layer_1_layer_norm(ctx, x1)));
}

rt::Tensor T5Encoder::forward(const rt::Context& ctx, const rt::Tensor& input_ids) const {
  CHECK(input_ids.dtype() == rt::DType::I64 && input_ids.dim() == 2, "T5 input_ids must be int64 [B, T], got ",
        input_ids.str());
  // The residual stream stays f32 on every device: in bf16 it drifts ~1% over 24 blocks (T5's activations
  // grow large); the projections still run in the weights' dtype (nn::Linear rounds their inputs).
  rt::Tensor x = rt::cast(ctx, rt::embedding(ctx, rt::to_ctx(ctx, input_ids), shared), rt::DType::F32);  // [B, T, C]
  const rt::Tensor bias = position_bias(ctx, input_ids.size(1));  // [H, T, T]
  for (size_t i = 0; i < block.size(); ++i) x = block_forward(ctx, block[i], x, bias, int(i));
  return final_layer_norm(ctx, x);  // [B, T, C]
}

}  // namespace te::t5
