#include "cpu/cpu_ops.h"
#include "ops.h"
#include "ops/validate.h"

namespace rt {

// A [B, C] per-sample vector of x [B, L, C] (shift, scale, gate).
static void require_per_sample(const Context& ctx, const char* op, const char* arg, const Tensor& t, const Tensor& x) {
  detail::require_float(ctx, op, arg, t);
  const Shape want{x.size(0), x.size(2)};
  CHECK(t.shape() == want, op, ": ", arg, " must be ", shape_str(want), " for x ", x.str(), ", got ", t.str());
}

Tensor layer_norm_modulate(const Context& ctx, const Tensor& x, const Tensor& shift, const Tensor& scale, float eps) {
  detail::require_float(ctx, "layer_norm_modulate", "x", x);
  detail::require_rank("layer_norm_modulate", "x", x, 3);
  require_per_sample(ctx, "layer_norm_modulate", "shift", shift, x);
  require_per_sample(ctx, "layer_norm_modulate", "scale", scale, x);
  if (x.device().is_cuda()) RT_CUDA(layer_norm_modulate(ctx, x, shift, scale, eps));
  return cpu::layer_norm_modulate(ctx, x, shift, scale, eps);
}

Tensor gated_residual(const Context& ctx, const Tensor& x, const Tensor& gate, const Tensor& y) {
  detail::require_float(ctx, "gated_residual", "x", x);
  detail::require_float(ctx, "gated_residual", "y", y);
  detail::require_rank("gated_residual", "x", x, 3);
  CHECK(y.shape() == x.shape(), "gated_residual: y ", y.str(), " must have the shape of x ", x.str());
  require_per_sample(ctx, "gated_residual", "gate", gate, x);
  if (x.device().is_cuda()) RT_CUDA(gated_residual(ctx, x, gate, y));
  return cpu::gated_residual(ctx, x, gate, y);
}

Tensor qk_norm_rope(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& cos, const Tensor& sin,
                    float eps) {
  detail::require_float(ctx, "qk_norm_rope", "x", x);
  detail::require_rank("qk_norm_rope", "x", x, 4);
  CHECK(x.size(3) % 2 == 0, "qk_norm_rope: head dim ", x.size(3), " must be even");
  detail::require_vec(ctx, "qk_norm_rope", "weight", weight, x.size(3));
  const Shape table{x.size(1), x.size(3) / 2};
  CHECK(cos.shape() == table && sin.shape() == table, "qk_norm_rope: cos ", cos.str(), " / sin ", sin.str(), " must be ",
        shape_str(table), " for x ", x.str());
  detail::require_float(ctx, "qk_norm_rope", "cos", cos);
  detail::require_float(ctx, "qk_norm_rope", "sin", sin);
  if (x.device().is_cuda()) RT_CUDA(qk_norm_rope(ctx, x, weight, cos, sin, eps));
  return cpu::qk_norm_rope(ctx, x, weight.defined() ? weight.contiguous() : weight, cos, sin, eps);
}

}  // namespace rt
