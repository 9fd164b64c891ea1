#include "cpu/cpu_ops.h"
#include "ops.h"
#include "ops/validate.h"

namespace rt {

static void check_linear(const Context& ctx, const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  detail::require_float(ctx, op, "x", x);
  detail::require_float(ctx, op, "weight", weight);
  detail::require_rank(op, "weight", weight, 2);
  CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), op, ": x ", x.str(), " does not match weight ", weight.str());
  detail::require_vec(ctx, op, "bias", bias, weight.size(0));
}

Tensor linear(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_linear(ctx, "linear", x, weight, bias);
  if (x.device().is_cuda()) RT_CUDA(linear(ctx, x, weight, bias));
  return cpu::linear(ctx, x, weight, bias);
}

Tensor linear_gelu_tanh(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_linear(ctx, "linear_gelu_tanh", x, weight, bias);
  if (x.device().is_cuda()) RT_CUDA(linear_gelu_tanh(ctx, x, weight, bias));
  return cpu::unary(ctx, cpu::UnaryOp::GeluTanh, cpu::linear(ctx, x, weight, bias));
}

Tensor linear_accumulate(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& acc) {
  check_linear(ctx, "linear_accumulate", x, weight, bias);
  detail::require_float(ctx, "linear_accumulate", "acc", acc);
  Shape out = x.shape();
  out.back() = weight.size(0);
  CHECK(acc.shape() == out, "linear_accumulate: acc ", acc.str(), " must be ", shape_str(out), " for x ", x.str(),
        " and weight ", weight.str());
  if (x.device().is_cuda()) RT_CUDA(linear_accumulate(ctx, x, weight, bias, contiguous(ctx, acc)));
  return cpu::binary(ctx, cpu::BinaryOp::Add, acc, cpu::linear(ctx, x, weight, bias));
}

Tensor matmul(const Context& ctx, const Tensor& a, const Tensor& b) {
  detail::require_float(ctx, "matmul", "a", a);
  detail::require_float(ctx, "matmul", "b", b);
  CHECK(a.dim() >= 2 && a.dim() == b.dim(), "matmul: ranks differ: ", a.str(), " vs ", b.str());
  for (int64_t d = 0; d < a.dim() - 2; ++d) CHECK(a.size(d) == b.size(d), "matmul: batch dims differ: ", a.str(), " vs ", b.str());
  CHECK(a.size(-1) == b.size(-2), "matmul: inner dims differ: ", a.str(), " vs ", b.str());
  if (a.device().is_cuda()) RT_CUDA(matmul(ctx, a, b));
  return cpu::matmul(ctx, a, b);
}

}  // namespace rt
