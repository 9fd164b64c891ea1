#include "cpu/cpu_ops.h"
#include "ops.h"
#include "ops/validate.h"

namespace rt {

Tensor layer_norm(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  detail::require_float(ctx, "layer_norm", "x", x);
  detail::require_vec(ctx, "layer_norm", "weight", weight, x.size(-1));
  detail::require_vec(ctx, "layer_norm", "bias", bias, x.size(-1));
  if (x.device().is_cuda()) RT_CUDA(layer_norm(ctx, x, weight, bias, eps));
  return cpu::layer_norm(ctx, x, weight.defined() ? weight.contiguous() : weight, bias.defined() ? bias.contiguous() : bias, eps);
}

Tensor rms_norm(const Context& ctx, const Tensor& x, const Tensor& weight, float eps) {
  detail::require_float(ctx, "rms_norm", "x", x);
  detail::require_vec(ctx, "rms_norm", "weight", weight, x.size(-1));
  if (x.device().is_cuda()) RT_CUDA(rms_norm(ctx, x, weight, eps));
  return cpu::rms_norm(ctx, x, weight.defined() ? weight.contiguous() : weight, eps);
}

Tensor group_norm(const Context& ctx, const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias,
                  float eps) {
  detail::require_float(ctx, "group_norm", "x", x);
  CHECK(x.dim() >= 2, "group_norm: x must be [N, C, ...], got ", x.str());
  CHECK(groups > 0 && x.size(1) % groups == 0, "group_norm: ", x.size(1), " channels not divisible into ", groups, " groups");
  detail::require_vec(ctx, "group_norm", "weight", weight, x.size(1));
  detail::require_vec(ctx, "group_norm", "bias", bias, x.size(1));
  if (x.device().is_cuda()) RT_CUDA(group_norm(ctx, x, groups, weight, bias, eps));
  return cpu::group_norm(ctx, x, groups, weight.defined() ? weight.contiguous() : weight, bias.defined() ? bias.contiguous() : bias, eps);
}

Tensor softmax(const Context& ctx, const Tensor& x) {
  detail::require_float(ctx, "softmax", "x", x);
  if (x.device().is_cuda()) RT_CUDA(softmax(ctx, x));
  return cpu::softmax(ctx, x);
}

}  // namespace rt
