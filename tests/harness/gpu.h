// GPU tests: a CUDA context when this build has the CUDA backend and a device is present; otherwise the
// test prints the skip marker (ctest reports the test as skipped through SKIP_REGULAR_EXPRESSION) and
// returns. One context per dtype for the whole test binary, so cuDNN/cuBLASLt handles are made once.
#pragma once
#include <cstdio>

#include "context.h"

namespace test {

// nullptr when no usable GPU (the reason is printed once).
const rt::Context* gpu_context(rt::DType dtype);

// A CPU f32 context for the reference side of GPU tests.
const rt::Context& cpu_context();

}  // namespace test

#define DITRUN_GPU_OR_SKIP(ctx_var, dtype)                        \
  const rt::Context* ctx_var##_ptr = ::test::gpu_context(dtype);  \
  if (ctx_var##_ptr == nullptr) {                                 \
    std::puts("[skipped: no CUDA device]");                       \
    return;                                                       \
  }                                                               \
  const rt::Context& ctx_var = *ctx_var##_ptr
