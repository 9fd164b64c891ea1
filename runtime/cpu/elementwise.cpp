#include <cmath>

#include "cpu/cpu_ops.h"

namespace rt::cpu {

static inline float apply(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
  }
  return 0.f;
}

// Both inputs are views of the output's shape (broadcast dims have stride 0). The innermost dim is a
// tight strided loop; the outer dims are walked with an odometer.
Tensor binary(const Context& ctx, BinaryOp op, const Tensor& a, const Tensor& b) {
  Tensor out = Tensor::empty(a.shape());
  const int64_t rank = a.dim();
  float* o = out.data<float>();
  if (rank == 0 || out.numel() == 0) {
    if (out.numel() == 1) o[0] = apply(op, a.data<float>()[0], b.data<float>()[0]);
    return out;
  }
  const int64_t inner = a.size(-1);
  const int64_t sa = a.strides().back(), sb = b.strides().back();
  const int64_t rows = out.numel() / inner;
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  ctx.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t oa = 0, ob = 0, rem = r;
      for (int64_t d = rank - 2; d >= 0; --d) {
        const int64_t i = rem % a.shape()[size_t(d)];
        rem /= a.shape()[size_t(d)];
        oa += i * a.strides()[size_t(d)];
        ob += i * b.strides()[size_t(d)];
      }
      float* orow = o + r * inner;
      for (int64_t j = 0; j < inner; ++j) orow[j] = apply(op, pa[oa + j * sa], pb[ob + j * sb]);
    }
  }, std::max<int64_t>(1, (1 << 16) / inner));
  return out;
}

static inline float apply(UnaryOp op, float x) {
  switch (op) {
    case UnaryOp::Silu: return x / (1.f + std::exp(-x));
    case UnaryOp::GeluTanh: {
      const float k = 0.7978845608028654f;  // sqrt(2/pi)
      return 0.5f * x * (1.f + std::tanh(k * (x + 0.044715f * x * x * x)));
    }
    case UnaryOp::GeluErf: return 0.5f * x * (1.f + std::erf(x * 0.7071067811865476f));
    case UnaryOp::QuickGelu: return x / (1.f + std::exp(-1.702f * x));
  }
  return 0.f;
}

Tensor unary(const Context& ctx, UnaryOp op, const Tensor& x_in) {
  const Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape());
  const float* p = x.data<float>();
  float* o = out.data<float>();
  ctx.parallel_for(x.numel(), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) o[i] = apply(op, p[i]);
  }, 1 << 16);
  return out;
}

Tensor affine(const Context& ctx, const Tensor& x_in, float s, float t) {
  const Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape());
  const float* p = x.data<float>();
  float* o = out.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) o[i] = p[i] * s + t;
  return out;
}

}  // namespace rt::cpu
