// Checks for CUDA runtime, cuBLASLt and cuDNN calls. A failure names the expression, the file:line and
// the library's message, then aborts: the op's inputs were validated, so a failing call is a bug or a
// broken device. Out of memory is reported separately (cuda::empty in copy.cu throws rt::OutOfMemory),
// because the user can act on it.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "base/check.h"

namespace rt::cuda {
[[noreturn]] void cuda_failed(const char* expr, const char* file, int line, const char* what);
}  // namespace rt::cuda

#define DITRUN_CUDA_CHECK(expr)                                                                  \
  do {                                                                                           \
    const cudaError_t _e = (expr);                                                               \
    if (_e != cudaSuccess) ::rt::cuda::cuda_failed(#expr, __FILE__, __LINE__, cudaGetErrorString(_e)); \
  } while (0)

#define DITRUN_CUBLAS_CHECK(expr)                                                                     \
  do {                                                                                                \
    const cublasStatus_t _s = (expr);                                                                 \
    if (_s != CUBLAS_STATUS_SUCCESS) ::rt::cuda::cuda_failed(#expr, __FILE__, __LINE__, cublasLtGetStatusString(_s)); \
  } while (0)

#define DITRUN_CUDNN_CHECK(expr)                                                                   \
  do {                                                                                             \
    const cudnnStatus_t _s = (expr);                                                               \
    if (_s != CUDNN_STATUS_SUCCESS) ::rt::cuda::cuda_failed(#expr, __FILE__, __LINE__, cudnnGetErrorString(_s)); \
  } while (0)
