// GPU tests that run once per block-sparse kernel (sm80, sm90, sm90ws): the sm90 and sm90ws runs skip, with the reason,
// where the wgmma kernel cannot run (off compute capability 9.0, or a build without sm_90a code).
#pragma once
#include <cstdio>
#include <string>

#include "context.h"
#include "sparse_attention/attention.h"
#if DITRUN_WITH_CUDA
#include "sparse_attention/kernels/sparse/block_sparse.h"
#endif

namespace test {

// Why `kernel` cannot run on ctx's device ("" when it can).
inline std::string sparse_kernel_refusal(const rt::Context& ctx, sattn::SparseKernel kernel) {
#if DITRUN_WITH_CUDA
  if (kernel == sattn::SparseKernel::Sm90 || kernel == sattn::SparseKernel::Sm90Ws)
    return sattn::kernels::cuda::block_sparse_sm90_device_refusal(ctx);
#else
  (void)ctx, (void)kernel;
#endif
  return "";
}

}  // namespace test

// After DITRUN_GPU_OR_SKIP: returns with the skip marker when `kernel` cannot run on this device.
#define KERNEL_OR_SKIP(ctx, kernel)                                                       \
  if (const std::string why_ = ::test::sparse_kernel_refusal(ctx, kernel); !why_.empty()) { \
    std::printf("[skipped: %s]\n", why_.c_str());                                         \
    return;                                                                               \
  }
