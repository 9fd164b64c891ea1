#include "nn/layers.h"

#include <cmath>

namespace rt::nn {

Tensor timestep_embedding(const Context& ctx, const Tensor& t_in, int64_t dim, bool flip_sin_to_cos,
                          float downscale_freq_shift, float scale, float max_period) {
  CHECK(t_in.dim() == 1, "timestep_embedding: t must be [B], got ", t_in.str());
  const Tensor t = to_host(ctx, t_in);  // [B] timesteps are a few host scalars; computed there in f32
  const int64_t b = t.size(0), half = dim / 2;
  Tensor out = Tensor::zeros({b, dim});
  float* o = out.data<float>();
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t j = 0; j < half; ++j) {
      const float exponent = -std::log(max_period) * float(j) / (float(half) - downscale_freq_shift);
      const float angle = scale * (t.data<float>()[i] * std::exp(exponent));
      const float s = std::sin(angle), c = std::cos(angle);
      o[i * dim + j] = flip_sin_to_cos ? c : s;
      o[i * dim + half + j] = flip_sin_to_cos ? s : c;
    }
  }
  return to_device(ctx, out, ctx.device(), ctx.dtype());
}

Tensor modulate(const Context& ctx, const Tensor& x, const Tensor& shift, const Tensor& scale) {
  CHECK(x.dim() == 3 && shift.dim() == 2 && scale.dim() == 2, "modulate: x ", x.str(), " shift ", shift.str(),
        " scale ", scale.str());
  const Tensor one_plus = affine(ctx, scale, 1.f, 1.f).unsqueeze(1);  // [B, 1, C]
  return add(ctx, mul(ctx, x, one_plus), shift.unsqueeze(1));
}

}  // namespace rt::nn
