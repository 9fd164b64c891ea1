// The sm_80 warp-level instructions the block-sparse attention kernel is built from (they also run on
// sm_90a): asynchronous 16-byte global->shared copies (cp.async, zero-filling out-of-range rows),
// ldmatrix (plain and transposed) and the m16n8k16 tensor-core MMA with 16-bit inputs and f32
// accumulators. Fragment layouts are the PTX ISA's ("Matrix Fragments for mma.m16n8k16"): with
// g = lane / 4 and t = lane % 4, an accumulator holds rows g and g + 8, columns 2t and 2t + 1.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace sattn::kernels::cuda {

__device__ __forceinline__ uint32_t smem_address(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}

// Copies 16 bytes from global `src` to shared `dst`; with `valid` false nothing is read and the 16 bytes
// become zeros (rows past the sequence end must be zeros, not garbage: 0 · NaN would poison P·V).
// .cg: keys and values are shared by the CTAs of one head through L2, not L1.
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool valid) {
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_address(dst)), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i, register i receives it.
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(row)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(row)));
}

// d += a · b for one 16x8x16 tile: a (16x16, row-major fragments), b (16x8, column fragments), f32 d.
#define SATTN_MMA_16816(IN)                                                                                  \
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." IN "." IN ".f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, " \
               "{%8, %9}, {%0, %1, %2, %3};\n"                                                               \
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])                                             \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1))

template <typename T>
__device__ __forceinline__ void mma_16x8x16(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  static_assert(std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>, "bf16 or f16 inputs");
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    SATTN_MMA_16816("bf16");
  else
    SATTN_MMA_16816("f16");
}
#undef SATTN_MMA_16816

// Two floats as one register of two 16-bit values, `lo` in the low half (the lower column index).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);

template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

}  // namespace sattn::kernels::cuda
