// Device-side helpers shared by the CUDA op files: float conversions for the storage dtypes, a strided
// indexer (rank <= kMaxRank) for views, and the dtype dispatch that instantiates a kernel per dtype.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/common.h"
#include "tensor.h"

namespace rt::cuda {

inline constexpr int kMaxRank = 8;

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }

// Maps a linear index over a view's shape (row-major) to an element offset through its strides, relative
// to the view's first element (Tensor::raw_data()). Passed to kernels by value. Dimensions are stored
// innermost first so the loop peels the fastest one first.
struct StridedIndexer {
  int rank = 0;
  int64_t size[kMaxRank] = {};
  int64_t stride[kMaxRank] = {};

  __device__ __forceinline__ int64_t operator()(int64_t linear) const {
    int64_t off = 0;
    for (int d = 0; d < rank; ++d) {
      const int64_t i = linear % size[d];
      linear /= size[d];
      off += i * stride[d];
    }
    return off;
  }
};

// Builds the indexer of view `t` (its shape and strides; offsets are relative to t.raw_data()). Host-side.
StridedIndexer make_indexer(const Tensor& t);

// DITRUN_DISPATCH_FLOAT(dtype, T, body): runs body with T = float, __nv_bfloat16 or __half.
#define DITRUN_DISPATCH_FLOAT(dtype, T, ...)                                                   \
  [&] {                                                                                        \
    switch (dtype) {                                                                           \
      case ::rt::DType::F32: { using T = float; return __VA_ARGS__(); }                        \
      case ::rt::DType::BF16: { using T = __nv_bfloat16; return __VA_ARGS__(); }              \
      case ::rt::DType::F16: { using T = __half; return __VA_ARGS__(); }                       \
      default: DITRUN_CHECK(false, "CUDA kernels take f32, bf16 or f16, got ", ::rt::dtype_name(dtype)); \
    }                                                                                          \
  }()

inline unsigned blocks_for(int64_t n, int threads) { return unsigned((n + threads - 1) / threads); }

}  // namespace rt::cuda
