#include "cpu/cpu_ops.h"
#include "ops.h"
#include "ops/validate.h"

namespace rt {

Tensor layer_norm(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  detail::require_f32("layer_norm", "x", x);
  detail::require_vec("layer_norm", "weight", weight, x.size(-1));
  detail::require_vec("layer_norm", "bias", bias, x.size(-1));
  return cpu::layer_norm(ctx, x, weight.defined() ? weight.contiguous() : weight, bias.defined() ? bias.contiguous() : bias, eps);
}

Tensor rms_norm(const Context& ctx, const Tensor& x, const Tensor& weight, float eps) {
  detail::require_f32("rms_norm", "x", x);
  detail::require_vec("rms_norm", "weight", weight, x.size(-1));
  return cpu::rms_norm(ctx, x, weight.defined() ? weight.contiguous() : weight, eps);
}

Tensor group_norm(const Context& ctx, const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias,
                  float eps) {
  detail::require_f32("group_norm", "x", x);
  CHECK(x.dim() >= 2, "group_norm: x must be [N, C, ...], got ", x.str());
  CHECK(groups > 0 && x.size(1) % groups == 0, "group_norm: ", x.size(1), " channels not divisible into ", groups, " groups");
  detail::require_vec("group_norm", "weight", weight, x.size(1));
  detail::require_vec("group_norm", "bias", bias, x.size(1));
  return cpu::group_norm(ctx, x, groups, weight.defined() ? weight.contiguous() : weight, bias.defined() ? bias.contiguous() : bias, eps);
}

Tensor softmax(const Context& ctx, const Tensor& x) {
  detail::require_f32("softmax", "x", x);
  return cpu::softmax(ctx, x);
}

}  // namespace rt
