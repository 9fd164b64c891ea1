// Shared argument checks and backend dispatch for runtime/ops/*.cpp. A failed check is a bug in the
// caller (model code), so these CHECK and print the op name with the offending tensors.
#pragma once
#include "context.h"
#include "tensor.h"

#if DITRUN_WITH_CUDA
#include "cuda/cuda_ops.h"
// Inside an op: `if (x.device().is_cuda()) RT_CUDA(foo(ctx, ...));` returns the CUDA op's result.
#define RT_CUDA(call) return ::rt::cuda::call
#define RT_CUDA_DO(call) ::rt::cuda::call
#else
#define RT_CUDA(call) DITRUN_CHECK(false, "device tensor in a build without the CUDA backend")
#define RT_CUDA_DO(call) DITRUN_CHECK(false, "device tensor in a build without the CUDA backend")
#endif

namespace rt::detail {

// A float tensor on the context's device: f32 on the CPU (the reference computes in f32); f32, bf16 or
// f16 on a GPU.
inline void require_float(const Context& ctx, const char* op, const char* arg, const Tensor& t) {
  DITRUN_CHECK(t.defined(), op, ": ", arg, " is undefined");
  DITRUN_CHECK(t.device() == ctx.device(), op, ": ", arg, " ", t.str(), " is on ", device_str(t.device()),
               " but the context runs on ", device_str(ctx.device()), "; move it with rt::to_device");
  if (t.device().is_cpu()) {
    DITRUN_CHECK(t.dtype() == DType::F32, op, ": ", arg, " must be f32 on the CPU, got ", t.str());
  } else {
    DITRUN_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::BF16 || t.dtype() == DType::F16, op, ": ", arg,
                 " must be f32, bf16 or f16, got ", t.str());
  }
}

inline void require_rank(const char* op, const char* arg, const Tensor& t, int64_t rank) {
  DITRUN_CHECK(t.dim() == rank, op, ": ", arg, " must have rank ", rank, ", got ", t.str());
}

inline void require_vec(const Context& ctx, const char* op, const char* arg, const Tensor& t, int64_t n) {
  if (!t.defined()) return;
  require_float(ctx, op, arg, t);
  DITRUN_CHECK(t.dim() == 1 && t.size(0) == n, op, ": ", arg, " must be [", n, "], got ", t.str());
}

}  // namespace rt::detail
