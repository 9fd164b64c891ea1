// cuBLASLt matrix products for the CUDA ops. A problem is stated in cuBLAS's column-major terms; its
// descriptors and algorithm are chosen once per problem (shapes, leading dimensions, pointer alignments,
// epilogue, C operand) and cached in DeviceState::plans: large problems time the heuristic's top 8
// algorithms on their first call, so a steady-state call makes no heuristic query. Host-only header.
#pragma once
#include <cstdint>

#include "context.h"
#include "dtype.h"

namespace rt::cuda {

enum class GemmEpilogue : uint8_t { None, Bias, Gelu, GeluBias };

// One stored operand: a column-major `rows` x `cols` matrix with leading dimension `ld` (elements), the
// next batch entry `batch_stride` elements further; the product uses op(X) = X, or Xᵀ when `trans`.
struct GemmOperand {
  const void* data = nullptr;
  bool trans = false;
  int64_t rows = 0, cols = 0, ld = 0, batch_stride = 0;
};

// For each of `batch` entries: D[m, n] = epilogue(op(A)[m, k] · op(B)[k, n] + C[m, n] + bias[m]), where
// the C term is present only when `c` is given (same layout as D; it may be D itself), D column-major
// with ld = m and batch stride m·n. A, B, D and bias are all `dtype` (f32, bf16 or f16); products
// accumulate in f32 (never TF32), the scale is f32. `bias` is read only by the Bias epilogues.
// Returns false, launching nothing, when cuBLASLt has no algorithm for the problem (operand pointers
// aligned to less than 16 bytes, e.g. views at odd offsets, or an epilogue it cannot fuse for the shape);
// the caller then retries with fresh, aligned copies, then without the epilogue.
bool gemm(const Context& ctx, DType dtype, int64_t m, int64_t n, int64_t k, int64_t batch, const GemmOperand& a,
          const GemmOperand& b, void* d, GemmEpilogue epilogue, const void* bias, const void* c = nullptr);

}  // namespace rt::cuda
