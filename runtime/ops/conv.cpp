#include "cpu/cpu_ops.h"
#include "ops.h"
#include "ops/validate.h"

namespace rt {

Tensor conv2d(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
              int64_t padding) {
  detail::require_float(ctx, "conv2d", "x", x);
  detail::require_float(ctx, "conv2d", "weight", weight);
  detail::require_rank("conv2d", "x", x, 4);
  detail::require_rank("conv2d", "weight", weight, 4);
  CHECK(x.size(1) == weight.size(1), "conv2d: x ", x.str(), " has ", x.size(1), " channels, weight ", weight.str(),
        " expects ", weight.size(1));
  CHECK(stride >= 1 && padding >= 0, "conv2d: stride ", stride, " padding ", padding);
  CHECK(x.size(2) + 2 * padding >= weight.size(2) && x.size(3) + 2 * padding >= weight.size(3),
        "conv2d: input ", x.str(), " smaller than kernel ", weight.str());
  detail::require_vec(ctx, "conv2d", "bias", bias, weight.size(0));
  if (x.device().is_cuda()) RT_CUDA(conv2d(ctx, x, weight, bias, stride, padding));
  return cpu::conv2d(ctx, x, weight, bias.defined() ? bias.contiguous() : bias, stride, padding);
}

Tensor upsample_nearest2d(const Context& ctx, const Tensor& x, int64_t factor) {
  detail::require_float(ctx, "upsample_nearest2d", "x", x);
  CHECK(x.dim() >= 2 && factor >= 1, "upsample_nearest2d: x ", x.str(), " factor ", factor);
  if (x.device().is_cuda()) {
    // Nearest upsampling is a copy from a broadcast view: x [.., H, 1, W, 1] expanded by the factor.
    Shape src_shape(x.shape().begin(), x.shape().end() - 2), out_shape = src_shape, grid = src_shape;
    const int64_t h = x.size(-2), w = x.size(-1);
    src_shape.insert(src_shape.end(), {h, 1, w, 1});
    grid.insert(grid.end(), {h, factor, w, factor});
    out_shape.insert(out_shape.end(), {h * factor, w * factor});
    Tensor out = empty(ctx, out_shape, x.dtype());
    RT_CUDA_DO(copy(ctx, out.view(grid), contiguous(ctx, x).view(src_shape).expand(grid)));
    return out;
  }
  return cpu::upsample_nearest2d(ctx, x, factor);
}

}  // namespace rt
