// The fused ops' reference: each is the chain of ops it replaces, written out (the normalization by the
// reference norm itself, the rest as plain loops in the same order of roundings), so that it agrees
// with the chain to the last bit and the GPU kernels are tested against one definition.
#include "cpu/cpu_ops.h"

namespace rt::cpu {

// normalized·(1 + scale) + shift, per batch row of shift/scale.
Tensor layer_norm_modulate(const Context& ctx, const Tensor& x, const Tensor& shift_in, const Tensor& scale_in, float eps) {
  Tensor out = layer_norm(ctx, x, {}, {}, eps);
  const Tensor shift = shift_in.contiguous(), scale = scale_in.contiguous();
  const int64_t b = x.size(0), l = x.size(1), c = x.size(2);
  float* o = out.data<float>();
  ctx.parallel_for(b * l, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* sh = shift.data<float>() + (r / l) * c;
      const float* sc = scale.data<float>() + (r / l) * c;
      float* orow = o + r * c;
      for (int64_t j = 0; j < c; ++j) orow[j] = orow[j] * (sc[j] * 1.f + 1.f) + sh[j];
    }
  }, 64);
  return out;
}

Tensor gated_residual(const Context& ctx, const Tensor& x_in, const Tensor& gate_in, const Tensor& y_in) {
  const Tensor x = x_in.contiguous(), gate = gate_in.contiguous(), y = y_in.contiguous();
  const int64_t b = x.size(0), l = x.size(1), c = x.size(2);
  Tensor out = Tensor::empty(x.shape());
  float* o = out.data<float>();
  ctx.parallel_for(b * l, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* g = gate.data<float>() + (r / l) * c;
      const float* xr = x.data<float>() + r * c;
      const float* yr = y.data<float>() + r * c;
      for (int64_t j = 0; j < c; ++j) o[r * c + j] = xr[j] + g[j] * yr[j];
    }
  }, 64);
  return out;
}

Tensor qk_norm_rope(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& cos, const Tensor& sin,
                    float eps) {
  return rope(ctx, rms_norm(ctx, x, weight, eps), cos, sin);
}

}  // namespace rt::cpu
