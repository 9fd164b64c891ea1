// conv2d as im2col + GEMM. The column buffer is built for a band of output rows at a time so that a
// 1024x1024 VAE decode does not need gigabytes of scratch.
#include <algorithm>
#include <cstring>

#include "cpu/cpu_ops.h"

namespace rt::cpu {

static constexpr int64_t kMaxColsBytes = 256ll << 20;

Tensor conv2d(const Context& ctx, const Tensor& x_in, const Tensor& w_in, const Tensor& bias, int64_t stride,
              int64_t pad) {
  const Tensor x = x_in.contiguous();
  const Tensor w = w_in.contiguous();
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), wd = x.size(3);
  const int64_t o = w.size(0), kh = w.size(2), kw = w.size(3);
  const int64_t ho = (h + 2 * pad - kh) / stride + 1, wo = (wd + 2 * pad - kw) / stride + 1;
  Tensor out = Tensor::empty({n, o, ho, wo});
  const int64_t krows = c * kh * kw;
  const int64_t band = std::max<int64_t>(1, std::min<int64_t>(ho, kMaxColsBytes / (4 * krows * wo)));
  std::vector<float> cols(size_t(krows * band * wo));
  const float* bp = bias.defined() ? bias.data<float>() : nullptr;
  for (int64_t bi = 0; bi < n; ++bi) {
    const float* xb = x.data<float>() + bi * c * h * wd;
    float* ob = out.data<float>() + bi * o * ho * wo;
    for (int64_t y0 = 0; y0 < ho; y0 += band) {
      const int64_t rows = std::min(band, ho - y0), ncols = rows * wo;
      ctx.parallel_for(krows, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t ci = r / (kh * kw), ky = (r / kw) % kh, kx = r % kw;
          float* dst = cols.data() + r * ncols;
          for (int64_t yy = 0; yy < rows; ++yy) {
            const int64_t iy = (y0 + yy) * stride - pad + ky;
            for (int64_t xx = 0; xx < wo; ++xx) {
              const int64_t ix = xx * stride - pad + kx;
              dst[yy * wo + xx] = (iy >= 0 && iy < h && ix >= 0 && ix < wd) ? xb[(ci * h + iy) * wd + ix] : 0.f;
            }
          }
        }
      }, 8);
      // out[o, band] = w[o, krows] · cols[krows, band]; written into the strided band of each channel.
      std::vector<float> tmp(size_t(o * ncols));
      gemm(ctx, false, false, o, ncols, krows, w.data<float>(), krows, cols.data(), ncols, tmp.data(), ncols);
      for (int64_t oc = 0; oc < o; ++oc) {
        float* dst = ob + oc * ho * wo + y0 * wo;
        const float bv = bp ? bp[oc] : 0.f;
        for (int64_t i = 0; i < ncols; ++i) dst[i] = tmp[size_t(oc * ncols + i)] + bv;
      }
    }
  }
  return out;
}

Tensor upsample_nearest2d(const Context& ctx, const Tensor& x_in, int64_t f) {
  const Tensor x = x_in.contiguous();
  const int64_t h = x.size(-2), w = x.size(-1);
  Shape s = x.shape();
  s[s.size() - 2] = h * f;
  s[s.size() - 1] = w * f;
  Tensor out = Tensor::empty(s);
  if (out.numel() == 0) return out;
  const int64_t planes = x.numel() / (h * w);
  const float* p = x.data<float>();
  float* o = out.data<float>();
  ctx.parallel_for(planes, [&](int64_t p0, int64_t p1) {
    for (int64_t pl = p0; pl < p1; ++pl)
      for (int64_t y = 0; y < h * f; ++y)
        for (int64_t xx = 0; xx < w * f; ++xx) o[(pl * h * f + y) * w * f + xx] = p[(pl * h + y / f) * w + xx / f];
  }, 4);
  return out;
}

}  // namespace rt::cpu
