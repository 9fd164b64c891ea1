// Flux blocks (BFL layers.py). Numerics follow diffusers in float32: LayerNorm without affine at
// eps 1e-6, q/k RMSNorm before RoPE, RoPE in float32 from double-precision tables.
#include "dit/flux/blocks.h"

#include <cmath>

#include "sparse_attention/attention.h"

namespace dit::flux {

using rt::Tensor;
namespace nn = rt::nn;

static constexpr float kNormEps = 1e-6f;

RopeTables embed_nd(const Tensor& ids_in, const std::vector<int64_t>& axes_dims, float theta) {
  CHECK(ids_in.dim() == 2 && ids_in.size(1) == int64_t(axes_dims.size()), "embed_nd: ids ", ids_in.str(),
        " need one column per RoPE axis (", axes_dims.size(), ")");
  const std::vector<float> ids = ids_in.to_vector();
  const int64_t len = ids_in.size(0), n_axes = ids_in.size(1);
  int64_t half = 0;
  for (int64_t d : axes_dims) half += d / 2;
  RopeTables pe{Tensor::empty({len, half}), Tensor::empty({len, half})};
  float* c = pe.cos.data<float>();
  float* s = pe.sin.data<float>();
  int64_t col = 0;
  for (int64_t a = 0; a < n_axes; ++a) {
    const int64_t dim = axes_dims[a];
    for (int64_t j = 0; j < dim / 2; ++j, ++col) {
      const double omega = 1.0 / std::pow(double(theta), double(2 * j) / double(dim));
      for (int64_t n = 0; n < len; ++n) {
        const double angle = double(ids[n * n_axes + a]) * omega;
        c[n * half + col] = float(std::cos(angle));
        s[n * half + col] = float(std::sin(angle));
      }
    }
  }
  return pe;
}

static nn::Linear load_linear(const weights::WeightLoader& w, int64_t in, int64_t out, bool bias = true) {
  nn::Linear l;
  l.weight = w.get("weight", {out, in});
  if (bias) l.bias = w.get("bias", {out});
  return l;
}


// [B, L, 3·H·D] -> q, k, v [B, L, H, D]: strided views of the projection output.
struct QKV {
  Tensor q, k, v;
};
static QKV split_heads(const Tensor& qkv, int64_t heads, int64_t head_dim) {
  const Tensor t = qkv.unflatten(2, {3, heads, head_dim});  // [B, L, 3, H, D] view, no copy
  return {t.select(2, 0), t.select(2, 1), t.select(2, 2)};
}

// QKNorm then RoPE of q and k (one fused pass each), for tokens [begin, end) of the RoPE tables.
static void norm_rope(const rt::Context& ctx, QKV& x, const QKNorm& norm, const RopeTables& pe, int64_t begin) {
  const int64_t end = begin + x.q.size(1);
  const Tensor cos = pe.cos.slice(0, begin, end), sin = pe.sin.slice(0, begin, end);
  x.q = rt::qk_norm_rope(ctx, x.q, norm.query_norm.weight, cos, sin, norm.query_norm.eps);  // [B, L, H, D]
  x.k = rt::qk_norm_rope(ctx, x.k, norm.key_norm.weight, cos, sin, norm.key_norm.eps);
}

// Softmax attention through sparse_attention -> [B, L, H·D]. x is the joint sequence, text first; a sparse
// method gets the image grid from the RoPE tables.
static Tensor attention(const rt::Context& ctx, const QKV& x, int layer_index, int step_index, const RopeTables& pe,
                        const AttentionPolicy& policy) {
  sattn::AttentionParams p;
  p.q = x.q;
  p.k = x.k;
  p.v = x.v;
  p.layer_index = layer_index;
  p.step_index = step_index;
  p.num_steps = policy.num_steps > 0 ? policy.num_steps : -1;
  p.observer = policy.observer;
  p.method = policy.method_for(step_index, layer_index);
  if (!p.method.is_dense() || p.observer != nullptr) {  // observers (calibration) see the grid of dense calls too
    const int64_t len = x.q.size(1), grid = pe.grid_h * pe.grid_w;
    CHECK(grid > 0 && grid <= len, "attention ", sattn::method_str(p.method), " needs the image grid, but the image ids of ",
          len, " tokens are not a row-major h x w grid after the text (RoPE grid ", pe.grid_h, "x", pe.grid_w, ")");
    p.tokens = joint_tokens(len - grid, pe.grid_h, pe.grid_w);
    if (!p.method.is_dense()) p.method = policy.call_method(ctx, p);  // dense where it cannot win (policy.fallback)
  }
  const Tensor o = sattn::attention(ctx, p);  // [B, L, H, D]
  return o.reshape({o.size(0), o.size(1), o.size(2) * o.size(3)});
}

static Tensor modulated_norm(const rt::Context& ctx, const Tensor& x, const ModulationOut& m) {
  return rt::layer_norm_modulate(ctx, x, m.shift, m.scale, kNormEps);  // LN(x)·(1 + scale) + shift
}

MLPEmbedder MLPEmbedder::load(const weights::WeightLoader& w, int64_t in_dim, int64_t hidden) {
  return {load_linear(w.pp("in_layer"), in_dim, hidden), load_linear(w.pp("out_layer"), hidden, hidden)};
}

Tensor MLPEmbedder::operator()(const rt::Context& ctx, const Tensor& x) const {
  return out_layer(ctx, rt::silu(ctx, in_layer(ctx, x)));
}

QKNorm QKNorm::load(const weights::WeightLoader& w, int64_t head_dim) {
  QKNorm n;
  n.query_norm = {w.pp("query_norm").get("scale", {head_dim}), kNormEps};
  n.key_norm = {w.pp("key_norm").get("scale", {head_dim}), kNormEps};
  return n;
}

SelfAttention SelfAttention::load(const weights::WeightLoader& w, const Config& c) {
  return {load_linear(w.pp("qkv"), c.hidden_size, 3 * c.hidden_size, c.qkv_bias), QKNorm::load(w.pp("norm"), c.head_dim),
          load_linear(w.pp("proj"), c.hidden_size, c.hidden_size)};
}

Modulation Modulation::load(const weights::WeightLoader& w, int64_t hidden, int count) {
  return {load_linear(w.pp("lin"), hidden, 3 * count * hidden), count};
}

std::vector<ModulationOut> Modulation::operator()(const rt::Context& ctx, const Tensor& vec) const {
  const Tensor out = lin(ctx, rt::silu(ctx, vec));  // [B, 3·count·C]
  const int64_t c = out.size(1) / (3 * count);
  std::vector<ModulationOut> mods;
  for (int i = 0; i < count; ++i) {
    const int64_t base = int64_t(3 * i) * c;
    mods.push_back({out.slice(1, base, base + c), out.slice(1, base + c, base + 2 * c),
                    out.slice(1, base + 2 * c, base + 3 * c)});
  }
  return mods;
}

// ---- DoubleStreamBlock -------------------------------------------------------------------------

DoubleStreamBlock DoubleStreamBlock::load(const weights::WeightLoader& w, const Config& c, int layer_index) {
  DoubleStreamBlock b;
  const int64_t C = c.hidden_size, M = c.mlp_hidden();
  b.img_mod = Modulation::load(w.pp("img_mod"), C, 2);
  b.txt_mod = Modulation::load(w.pp("txt_mod"), C, 2);
  b.img_attn = SelfAttention::load(w.pp("img_attn"), c);
  b.txt_attn = SelfAttention::load(w.pp("txt_attn"), c);
  b.img_mlp_0 = load_linear(w.pp("img_mlp").pp("0"), C, M);
  b.img_mlp_2 = load_linear(w.pp("img_mlp").pp("2"), M, C);
  b.txt_mlp_0 = load_linear(w.pp("txt_mlp").pp("0"), C, M);
  b.txt_mlp_2 = load_linear(w.pp("txt_mlp").pp("2"), M, C);
  b.num_heads = c.num_heads;
  b.head_dim = c.head_dim;
  b.layer_index = layer_index;
  return b;
}

void DoubleStreamBlock::forward(const rt::Context& ctx, Tensor& img, Tensor& txt, const Tensor& vec,
                                const RopeTables& pe, int step_index, const AttentionPolicy& policy) const {
  const auto img_m = img_mod(ctx, vec), txt_m = txt_mod(ctx, vec);

  // prepare image and text for attention; the RoPE tables list text tokens first
  const int64_t t_len = txt.size(1);
  QKV img_qkv = split_heads(img_attn.qkv(ctx, modulated_norm(ctx, img, img_m[0])), num_heads, head_dim);  // [B, N, H, D]
  norm_rope(ctx, img_qkv, img_attn.norm, pe, t_len);
  QKV txt_qkv = split_heads(txt_attn.qkv(ctx, modulated_norm(ctx, txt, txt_m[0])), num_heads, head_dim);  // [B, T, H, D]
  norm_rope(ctx, txt_qkv, txt_attn.norm, pe, 0);

  // joint attention, text first
  const QKV joint{rt::concat(ctx, {txt_qkv.q, img_qkv.q}, 1), rt::concat(ctx, {txt_qkv.k, img_qkv.k}, 1),
                  rt::concat(ctx, {txt_qkv.v, img_qkv.v}, 1)};  // [B, T+N, H, D]
  const Tensor attn = attention(ctx, joint, layer_index, step_index, pe, policy);  // [B, T+N, C]
  const Tensor txt_attn_out = attn.slice(1, 0, t_len), img_attn_out = attn.slice(1, t_len, attn.size(1));

  // image stream
  img = rt::gated_residual(ctx, img, img_m[0].gate, img_attn.proj(ctx, img_attn_out));
  Tensor h = modulated_norm(ctx, img, img_m[1]);
  h = img_mlp_2(ctx, rt::linear_gelu_tanh(ctx, h, img_mlp_0.weight, img_mlp_0.bias));  // [B, N, C]
  img = rt::gated_residual(ctx, img, img_m[1].gate, h);

  // text stream
  txt = rt::gated_residual(ctx, txt, txt_m[0].gate, txt_attn.proj(ctx, txt_attn_out));
  h = modulated_norm(ctx, txt, txt_m[1]);
  h = txt_mlp_2(ctx, rt::linear_gelu_tanh(ctx, h, txt_mlp_0.weight, txt_mlp_0.bias));  // [B, T, C]
  txt = rt::gated_residual(ctx, txt, txt_m[1].gate, h);
}

// ---- SingleStreamBlock -------------------------------------------------------------------------

SingleStreamBlock SingleStreamBlock::load(const weights::WeightLoader& w, const Config& c, int layer_index) {
  SingleStreamBlock b;
  b.hidden = c.hidden_size;
  b.mlp_hidden = c.mlp_hidden();
  b.linear1 = load_linear(w.pp("linear1"), b.hidden, 3 * b.hidden + b.mlp_hidden, c.qkv_bias);
  b.linear2 = load_linear(w.pp("linear2"), b.hidden + b.mlp_hidden, b.hidden);
  b.norm = QKNorm::load(w.pp("norm"), c.head_dim);
  b.modulation = Modulation::load(w.pp("modulation"), b.hidden, 1);
  b.num_heads = c.num_heads;
  b.head_dim = c.head_dim;
  b.layer_index = layer_index;
  return b;
}

Tensor SingleStreamBlock::forward(const rt::Context& ctx, const Tensor& x, const Tensor& vec, const RopeTables& pe,
                                  int step_index, const AttentionPolicy& policy) const {
  const ModulationOut mod = modulation(ctx, vec)[0];
  const Tensor x_mod = modulated_norm(ctx, x, mod);
  // linear1 in two products so the MLP half gets its GELU in the GEMM epilogue: [B, L, 3C] and [B, L, M].
  const Tensor w1 = linear1.weight, b1 = linear1.bias;
  const Tensor u = rt::linear(ctx, x_mod, w1.slice(0, 0, 3 * hidden), b1.defined() ? b1.slice(0, 0, 3 * hidden) : b1);
  QKV qkv = split_heads(u, num_heads, head_dim);  // [B, L, H, D]
  norm_rope(ctx, qkv, norm, pe, 0);
  const Tensor attn = attention(ctx, qkv, layer_index, step_index, pe, policy);                     // [B, L, C]
  const Tensor mlp = rt::linear_gelu_tanh(ctx, x_mod, w1.slice(0, 3 * hidden, 3 * hidden + mlp_hidden),
                                          b1.defined() ? b1.slice(0, 3 * hidden, 3 * hidden + mlp_hidden) : b1);  // [B, L, M]
  // linear2 over [attn | mlp] as two products into one output, without building the concatenation.
  const Tensor w2 = linear2.weight;  // [C, C + M]
  Tensor out = rt::linear(ctx, attn, w2.slice(1, 0, hidden), linear2.bias);                     // [B, L, C]
  out = rt::linear_accumulate(ctx, mlp, w2.slice(1, hidden, hidden + mlp_hidden), {}, out);      // [B, L, C]
  return rt::gated_residual(ctx, x, mod.gate, out);
}

// ---- LastLayer ------------------------------------------------------------------------------------

LastLayer LastLayer::load(const weights::WeightLoader& w, const Config& c) {
  return {load_linear(w.pp("adaLN_modulation").pp("1"), c.hidden_size, 2 * c.hidden_size),
          load_linear(w.pp("linear"), c.hidden_size, c.out_channels)};
}

Tensor LastLayer::forward(const rt::Context& ctx, const Tensor& x, const Tensor& vec) const {
  const Tensor m = adaLN_modulation_1(ctx, rt::silu(ctx, vec));  // [B, 2C]
  const int64_t c = m.size(1) / 2;
  const Tensor shift = m.slice(1, 0, c), scale = m.slice(1, c, 2 * c);
  return linear(ctx, rt::layer_norm_modulate(ctx, x, shift, scale, kNormEps));  // [B, N, C_out]
}

}  // namespace dit::flux
