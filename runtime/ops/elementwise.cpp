#include <algorithm>

#include "cpu/cpu_ops.h"
#include "ops.h"
#include "ops/validate.h"

namespace rt {

static Tensor binary_op(const Context& ctx, cpu::BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  detail::require_float(ctx, name, "a", a);
  detail::require_float(ctx, name, "b", b);
  const int64_t rank = std::max(a.dim(), b.dim());
  Shape shape(size_t(rank), 1);
  for (int64_t i = 0; i < rank; ++i) {
    const int64_t da = i < a.dim() ? a.size(a.dim() - 1 - i) : 1;
    const int64_t db = i < b.dim() ? b.size(b.dim() - 1 - i) : 1;
    CHECK(da == db || da == 1 || db == 1, name, ": shapes do not broadcast: ", a.str(), " and ", b.str());
    shape[size_t(rank - 1 - i)] = da == 1 ? db : da;  // numpy: 1 stretches to the other size, even 0
  }
  if (a.device().is_cuda()) RT_CUDA(binary(ctx, op, a.expand(shape), b.expand(shape)));
  return cpu::binary(ctx, op, a.expand(shape), b.expand(shape));
}

Tensor add(const Context& ctx, const Tensor& a, const Tensor& b) { return binary_op(ctx, cpu::BinaryOp::Add, "add", a, b); }
Tensor sub(const Context& ctx, const Tensor& a, const Tensor& b) { return binary_op(ctx, cpu::BinaryOp::Sub, "sub", a, b); }
Tensor mul(const Context& ctx, const Tensor& a, const Tensor& b) { return binary_op(ctx, cpu::BinaryOp::Mul, "mul", a, b); }

Tensor affine(const Context& ctx, const Tensor& x, float s, float t) {
  detail::require_float(ctx, "affine", "x", x);
  if (x.device().is_cuda()) RT_CUDA(affine(ctx, x, s, t));
  return cpu::affine(ctx, x, s, t);
}

#define RT_UNARY(fn, kind)                               \
  Tensor fn(const Context& ctx, const Tensor& x) {       \
    detail::require_float(ctx, #fn, "x", x);             \
    if (x.device().is_cuda()) RT_CUDA(unary(ctx, cpu::UnaryOp::kind, x)); \
    return cpu::unary(ctx, cpu::UnaryOp::kind, x);       \
  }
RT_UNARY(silu, Silu)
RT_UNARY(gelu_tanh, GeluTanh)
RT_UNARY(gelu_erf, GeluErf)
RT_UNARY(quick_gelu, QuickGelu)
#undef RT_UNARY

}  // namespace rt
