// Normalizations compute their statistics in double so the reference is tighter than any kernel
// tested against it.
#include <cmath>

#include "cpu/cpu_ops.h"

namespace rt::cpu {

Tensor layer_norm(const Context& ctx, const Tensor& x_in, const Tensor& weight, const Tensor& bias, float eps) {
  const Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape());
  if (out.numel() == 0) return out;
  const int64_t c = x.size(-1), rows = x.numel() / c;
  const float* w = weight.defined() ? weight.data<float>() : nullptr;
  const float* b = bias.defined() ? bias.data<float>() : nullptr;
  const float* p = x.data<float>();
  float* o = out.data<float>();
  ctx.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = p + r * c;
      double mean = 0, var = 0;
      for (int64_t j = 0; j < c; ++j) mean += xr[j];
      mean /= double(c);
      for (int64_t j = 0; j < c; ++j) var += (xr[j] - mean) * (xr[j] - mean);
      var /= double(c);
      const double inv = 1.0 / std::sqrt(var + double(eps));
      float* orow = o + r * c;
      for (int64_t j = 0; j < c; ++j) {
        float v = float((xr[j] - mean) * inv);
        if (w) v *= w[j];
        if (b) v += b[j];
        orow[j] = v;
      }
    }
  }, 64);
  return out;
}

Tensor rms_norm(const Context& ctx, const Tensor& x_in, const Tensor& weight, float eps) {
  const Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape());
  if (out.numel() == 0) return out;
  const int64_t c = x.size(-1), rows = x.numel() / c;
  const float* w = weight.defined() ? weight.data<float>() : nullptr;
  const float* p = x.data<float>();
  float* o = out.data<float>();
  ctx.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = p + r * c;
      double ss = 0;
      for (int64_t j = 0; j < c; ++j) ss += double(xr[j]) * xr[j];
      const double inv = 1.0 / std::sqrt(ss / double(c) + double(eps));
      float* orow = o + r * c;
      for (int64_t j = 0; j < c; ++j) orow[j] = float(xr[j] * inv) * (w ? w[j] : 1.f);
    }
  }, 64);
  return out;
}

Tensor group_norm(const Context& ctx, const Tensor& x_in, int64_t groups, const Tensor& weight, const Tensor& bias,
                  float eps) {
  const Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape());
  if (out.numel() == 0) return out;
  const int64_t n = x.size(0), c = x.size(1), spatial = x.numel() / (n * c), cg = c / groups;
  const float* w = weight.defined() ? weight.data<float>() : nullptr;
  const float* b = bias.defined() ? bias.data<float>() : nullptr;
  const float* p = x.data<float>();
  float* o = out.data<float>();
  ctx.parallel_for(n * groups, [&](int64_t g0, int64_t g1) {
    for (int64_t ng = g0; ng < g1; ++ng) {
      const int64_t bi = ng / groups, g = ng % groups;
      const float* base = p + (bi * c + g * cg) * spatial;
      const int64_t count = cg * spatial;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < count; ++i) mean += base[i];
      mean /= double(count);
      for (int64_t i = 0; i < count; ++i) var += (base[i] - mean) * (base[i] - mean);
      var /= double(count);
      const double inv = 1.0 / std::sqrt(var + double(eps));
      for (int64_t ch = 0; ch < cg; ++ch) {
        const int64_t cc = g * cg + ch;
        const float scale = w ? w[cc] : 1.f, shift = b ? b[cc] : 0.f;
        const float* xr = base + ch * spatial;
        float* orow = o + (bi * c + cc) * spatial;
        for (int64_t i = 0; i < spatial; ++i) orow[i] = float((xr[i] - mean) * inv) * scale + shift;
      }
    }
  });
  return out;
}

Tensor softmax(const Context& ctx, const Tensor& x_in) {
  const Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape());
  if (out.numel() == 0) return out;
  const int64_t c = x.size(-1), rows = x.numel() / c;
  const float* p = x.data<float>();
  float* o = out.data<float>();
  ctx.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = p + r * c;
      float* orow = o + r * c;
      float mx = -INFINITY;
      for (int64_t j = 0; j < c; ++j) mx = std::max(mx, xr[j]);
      double sum = 0;
      for (int64_t j = 0; j < c; ++j) {
        orow[j] = (mx == -INFINITY) ? 0.f : std::exp(xr[j] - mx);
        sum += orow[j];
      }
      const float inv = sum > 0 ? float(1.0 / sum) : 0.f;
      for (int64_t j = 0; j < c; ++j) orow[j] *= inv;
    }
  }, 64);
  return out;
}

}  // namespace rt::cpu
