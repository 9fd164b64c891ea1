// Flux building blocks, as BFL's src/flux/modules/layers.py names them (EmbedND, MLPEmbedder,
// QKNorm, SelfAttention, Modulation, DoubleStreamBlock, SingleStreamBlock, LastLayer).
// B batch, L tokens (T text + N image), H heads, D head dim, C hidden (= H·D), M mlp hidden.
#pragma once
#include <vector>

#include "context.h"
#include "dit/flux/attention_policy.h"
#include "dit/flux/config.h"
#include "nn/layers.h"
#include "weights/name_map.h"

namespace dit::flux {

// RoPE tables for the joint sequence: cos/sin [L, D/2], pair p of the head dim rotated by
// ids[n, axis(p)]·ω_p (axes laid out one after another, models.md §1.5). grid_h x grid_w: the image
// tokens' grid (row-major, after the text) when the ids say so (FluxTransformer::rope), else 0 x 0; a
// sparse attention method needs it.
struct RopeTables {
  rt::Tensor cos, sin;
  int64_t grid_h = 0, grid_w = 0;
};
// ids [L, n_axes] (float positions). Angles and cos/sin in double, as diffusers' FluxPosEmbed
// (freqs_dtype float64), then stored as float32.
RopeTables embed_nd(const rt::Tensor& ids, const std::vector<int64_t>& axes_dims, float theta);

// Linear -> SiLU -> Linear (time_in, guidance_in, vector_in).
struct MLPEmbedder {
  rt::nn::Linear in_layer, out_layer;
  static MLPEmbedder load(const weights::WeightLoader& w, int64_t in_dim, int64_t hidden);
  rt::Tensor operator()(const rt::Context& ctx, const rt::Tensor& x) const;
};

// Per-head RMSNorm of q and k over D (eps 1e-6, learnable scale).
struct QKNorm {
  rt::nn::RMSNorm query_norm, key_norm;
  static QKNorm load(const weights::WeightLoader& w, int64_t head_dim);
};

struct SelfAttention {
  rt::nn::Linear qkv;   // C -> 3C, layout [q | k | v]
  QKNorm norm;
  rt::nn::Linear proj;  // C -> C
  static SelfAttention load(const weights::WeightLoader& w, const Config& c);
};

// lin(SiLU(vec)) chunked into (shift, scale, gate) x count along the features.
struct ModulationOut {
  rt::Tensor shift, scale, gate;  // [B, C] views
};
struct Modulation {
  rt::nn::Linear lin;
  int count = 1;  // 2 for double blocks, 1 for single blocks
  static Modulation load(const weights::WeightLoader& w, int64_t hidden, int count);
  std::vector<ModulationOut> operator()(const rt::Context& ctx, const rt::Tensor& vec) const;
};

struct DoubleStreamBlock {
  Modulation img_mod, txt_mod;
  SelfAttention img_attn, txt_attn;
  rt::nn::Linear img_mlp_0, img_mlp_2, txt_mlp_0, txt_mlp_2;  // img_mlp.0 / img_mlp.2, ...
  int64_t num_heads = 0, head_dim = 0;
  int layer_index = 0;

  static DoubleStreamBlock load(const weights::WeightLoader& w, const Config& c, int layer_index);
  // img [B, N, C], txt [B, T, C], vec [B, C]; updates both streams in place.
  void forward(const rt::Context& ctx, rt::Tensor& img, rt::Tensor& txt, const rt::Tensor& vec,
               const RopeTables& pe, int step_index, const AttentionPolicy& attention = {}) const;
};

struct SingleStreamBlock {
  rt::nn::Linear linear1;  // C -> 3C + M: [q | k | v | mlp]
  rt::nn::Linear linear2;  // C + M -> C
  QKNorm norm;
  Modulation modulation;
  int64_t num_heads = 0, head_dim = 0, hidden = 0, mlp_hidden = 0;
  int layer_index = 0;

  static SingleStreamBlock load(const weights::WeightLoader& w, const Config& c, int layer_index);
  // x [B, L, C] (text then image) -> [B, L, C].
  rt::Tensor forward(const rt::Context& ctx, const rt::Tensor& x, const rt::Tensor& vec, const RopeTables& pe,
                     int step_index, const AttentionPolicy& attention = {}) const;
};

struct LastLayer {
  rt::nn::Linear adaLN_modulation_1;  // C -> 2C, rows (shift, scale)
  rt::nn::Linear linear;              // C -> C_out
  static LastLayer load(const weights::WeightLoader& w, const Config& c);
  rt::Tensor forward(const rt::Context& ctx, const rt::Tensor& x, const rt::Tensor& vec) const;
};

}  // namespace dit::flux
