#include "cpu/cpu_ops.h"
#include "ops.h"
#include "ops/validate.h"
#include "random_hash.h"

namespace rt {

Tensor empty(const Context& ctx, const Shape& shape, DType dtype) {
  if (ctx.device().is_cuda()) RT_CUDA(empty(ctx, shape, dtype));
  return Tensor::empty(shape, dtype);
}

Tensor zeros(const Context& ctx, const Shape& shape, DType dtype) {
  if (ctx.device().is_cpu()) return Tensor::zeros(shape, dtype);
  Tensor t = empty(ctx, shape, dtype);
  RT_CUDA_DO(fill(ctx, t, 0.f));
  return t;
}

Tensor to_device(const Context& ctx, const Tensor& t, Device device, DType dtype) {
  CHECK(t.defined(), "to_device: undefined tensor");
  CHECK(t.dtype() == dtype || (dtype_is_float(t.dtype()) && dtype_is_float(dtype)), "to_device: cannot convert ",
        t.str(), " to ", dtype_name(dtype));
  const Device from = t.device();
  CHECK(from.is_cpu() || from == ctx.device(), "to_device: ", t.str(), " is on ", device_str(from),
        ", not on this context's ", device_str(ctx.device()));
  CHECK(device.is_cpu() || device == ctx.device(), "to_device: target ", device_str(device), " is not this context's ",
        device_str(ctx.device()));
  if (from.is_cpu() && device.is_cpu()) return t.to(dtype);
  if (from.is_cpu()) {  // host -> device: convert on the host, then one upload
    const Tensor host = t.to(dtype);
    Tensor out = empty(ctx, t.shape(), dtype);
    RT_CUDA_DO(upload(ctx, out, host));
    return out;
  }
  const Tensor dev = cast(ctx, t, dtype);  // device -> *: convert on the device first
  if (device == from) return dev;
  Tensor out = Tensor::empty(t.shape(), dtype);
  RT_CUDA_DO(download(ctx, out, dev));
  return out;
}

Tensor to_ctx(const Context& ctx, const Tensor& t) {
  return to_device(ctx, t, ctx.device(), dtype_is_float(t.dtype()) ? ctx.dtype() : t.dtype());
}

Tensor to_host(const Context& ctx, const Tensor& t) {
  return to_device(ctx, t, Device::cpu(), dtype_is_float(t.dtype()) ? DType::F32 : t.dtype());
}

Tensor contiguous(const Context& ctx, const Tensor& t) {
  if (t.is_contiguous() || t.device().is_cpu()) return t.contiguous();
  Tensor out = empty(ctx, t.shape(), t.dtype());
  RT_CUDA_DO(copy(ctx, out, t));
  return out;
}

Tensor cast(const Context& ctx, const Tensor& t, DType dtype) {
  if (t.device().is_cpu()) return t.to(dtype);
  if (t.dtype() == dtype) return contiguous(ctx, t);
  Tensor out = empty(ctx, t.shape(), dtype);
  RT_CUDA_DO(copy(ctx, out, t));
  return out;
}

void copy_(const Context& ctx, const Tensor& dst, const Tensor& src) {
  detail::require_float(ctx, "copy_", "dst", dst);
  detail::require_float(ctx, "copy_", "src", src);
  CHECK(dst.shape() == src.shape(), "copy_: dst ", dst.str(), " and src ", src.str(), " differ in shape");
  if (dst.device().is_cuda()) {
    RT_CUDA_DO(copy(ctx, dst, src));
    return;
  }
  cpu::copy_(ctx, dst, src);
}

Tensor reshape(const Context& ctx, const Tensor& t, const Shape& shape) {
  return t.is_contiguous() ? t.view(shape) : contiguous(ctx, t).view(shape);
}

void fill_uniform(const Context& ctx, const Tensor& t, uint64_t seed, float lo, float hi) {
  CHECK(t.is_contiguous() && dtype_is_float(t.dtype()) && t.dtype() != DType::F8E4M3, "fill_uniform: ", t.str());
  if (t.device().is_cuda()) {
    RT_CUDA_DO(fill_uniform(ctx, t, seed, lo, hi));
    return;
  }
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    const float v = lo + (hi - lo) * uniform_from_hash(seed, uint64_t(i));
    switch (t.dtype()) {
      case DType::F32: static_cast<float*>(t.raw_data())[i] = v; break;
      case DType::BF16: static_cast<uint16_t*>(t.raw_data())[i] = f32_to_bf16(v); break;
      case DType::F16: static_cast<uint16_t*>(t.raw_data())[i] = f32_to_f16(v); break;
      default: CHECK(false, "fill_uniform: ", t.str());
    }
  }
}

MemoryStats memory_stats(const Context& ctx) {
  if (ctx.device().is_cuda()) RT_CUDA(memory_stats(ctx));
  return {};
}

void reset_peak_memory(const Context& ctx) {
  if (ctx.device().is_cuda()) RT_CUDA_DO(reset_peak_memory(ctx));
}

void synchronize(const Context& ctx) {
  if (ctx.device().is_cuda()) RT_CUDA_DO(synchronize(ctx));
}

}  // namespace rt
