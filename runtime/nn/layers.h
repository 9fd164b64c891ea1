// Reusable layers built from ops. Models hold them as typed members named after the reference
// state-dict path (double_blocks[i].img_attn.qkv), filled by the model's loader.
#pragma once
#include "ops.h"

namespace rt::nn {

// Matrix layers compute in their weight's dtype: an input kept wider (a model's f32 residual stream)
// is rounded to it first, and the output comes back in the weight's dtype.
inline Tensor as_weight_dtype(const Context& ctx, const Tensor& x, const Tensor& weight) {
  return x.dtype() == weight.dtype() ? x : cast(ctx, x, weight.dtype());
}

struct Linear {
  Tensor weight;  // [out, in]
  Tensor bias;    // [out] or undefined
  Tensor operator()(const Context& ctx, const Tensor& x) const {
    return linear(ctx, as_weight_dtype(ctx, x, weight), weight, bias);
  }
  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }
};

struct LayerNorm {
  Tensor weight, bias;  // [C] each, or undefined (elementwise_affine=False)
  float eps = 1e-5f;
  Tensor operator()(const Context& ctx, const Tensor& x) const { return layer_norm(ctx, x, weight, bias, eps); }
};

struct RMSNorm {
  Tensor weight;  // [C]
  float eps = 1e-6f;
  Tensor operator()(const Context& ctx, const Tensor& x) const { return rms_norm(ctx, x, weight, eps); }
};

struct GroupNorm {
  Tensor weight, bias;
  int64_t groups = 32;
  float eps = 1e-6f;
  Tensor operator()(const Context& ctx, const Tensor& x) const { return group_norm(ctx, x, groups, weight, bias, eps); }
};

struct Conv2d {
  Tensor weight, bias;  // [O, C, kh, kw], [O]
  int64_t stride = 1, padding = 0;
  Tensor operator()(const Context& ctx, const Tensor& x) const {
    return conv2d(ctx, as_weight_dtype(ctx, x, weight), weight, bias, stride, padding);
  }
};

// Sinusoidal embedding of t [B] -> [B, dim], as diffusers' get_timestep_embedding (float32 math):
// freq_j = exp(-ln(max_period)·j / (dim/2 − downscale_freq_shift)), angles = scale·t·freq,
// [sin | cos], or [cos | sin] when flip_sin_to_cos. Odd dims get a zero column.
Tensor timestep_embedding(const Context& ctx, const Tensor& t, int64_t dim, bool flip_sin_to_cos,
                          float downscale_freq_shift, float scale = 1.f, float max_period = 10000.f);

}  // namespace rt::nn
