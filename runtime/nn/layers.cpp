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

}  // namespace rt::nn
