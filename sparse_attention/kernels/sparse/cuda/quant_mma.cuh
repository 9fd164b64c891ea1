// The 8-bit warp-level MMAs of the quantized block-sparse kernel: mma.sync m16n8k32 with s8·s8 and u8·s8
// inputs into s32 (sm_80+) and e4m3·e4m3 into f32 (sm_89+; the compute_80 PTX build of the FP8 variant
// traps, the host refuses it below sm_89), plus the byte packing of P.
// Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k32"), with g = lane / 4 and t = lane % 4:
//   A (16x32, row-major, 4 registers of 4 bytes): reg0 row g, k 4t..4t+3; reg1 row g+8, same k;
//     reg2 row g, k 16+4t..; reg3 row g+8, k 16+4t..  (byte j of a register is k = 4t + j)
//   B (32x8, "col": column n = g), 2 registers: reg0 k 4t..4t+3, reg1 k 16+4t..
//   C/D (16x8, 4 registers): rows g and g+8, columns 2t and 2t+1 (as for m16n8k16).
// In 32-bit words these are the m16n8k16 b16 layouts, so ldmatrix (b16, non-transposed) loads 8-bit A
// and B fragments from rows of bytes unchanged: each 16-byte matrix row is 16 k values instead of 8.
#pragma once
#include <cuda_fp8.h>

#include <cstdint>

namespace sattn::kernels::cuda {

// d += a · b, s8 x s8 -> s32 (exact).
__device__ __forceinline__ void mma_s8s8(int d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
               "{%0, %1, %2, %3};\n"
               : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// d += a · b, u8 (P) x s8 (V) -> s32 (exact).
__device__ __forceinline__ void mma_u8s8(int d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
               "{%0, %1, %2, %3};\n"
               : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// d += a · b, e4m3 x e4m3 -> f32.
__device__ __forceinline__ void mma_e4m3(float d[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  asm volatile("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
               "{%0, %1, %2, %3};\n"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
  __trap();
#endif
}

// Four values as e4m3 bytes (round to nearest even, saturating at ±448), x0 in the lowest.
__device__ __forceinline__ uint32_t pack_e4m3x4(float x0, float x1, float x2, float x3) {
  const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(x0, x1), __NV_SATFINITE, __NV_E4M3);
  const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(x2, x3), __NV_SATFINITE, __NV_E4M3);
  return lo | (hi << 16);
}

// Four P values in [0, 1] as bytes, x0 in the lowest: u8 round(255·p) (INT8 P·V) or e4m3(448·p) (FP8 P·V).
template <bool FP8>
__device__ __forceinline__ uint32_t pack_p4(float x0, float x1, float x2, float x3) {
  if constexpr (FP8) {
    return pack_e4m3x4(x0 * 448.f, x1 * 448.f, x2 * 448.f, x3 * 448.f);
  } else {
    auto u8 = [](float p) { return min(__float2uint_rn(p * 255.f), 255u); };
    return u8(x0) | (u8(x1) << 8) | (u8(x2) << 16) | (u8(x3) << 24);
  }
}

// Byte offset of (row, 16-byte chunk) in a shared tile of rows of ROW_BYTES (64 or 128). The chunk is
// XOR-ed with bits of the row so that the eight rows one ldmatrix phase reads (eight consecutive rows from a
// multiple of 8, one chunk) fall into eight different 16-byte bank groups: with 128-byte rows row % 8, with
// 64-byte rows (two rows per 128 bytes) (row / 2) % 4.
template <int ROW_BYTES>
__device__ __forceinline__ int swizzle_bytes(int row, int chunk) {
  static_assert(ROW_BYTES == 64 || ROW_BYTES == 128, "rows of 64 or 128 bytes");
  if constexpr (ROW_BYTES == 128)
    return row * 128 + ((chunk ^ (row & 7)) << 4);
  else
    return row * 64 + ((chunk ^ ((row >> 1) & 3)) << 4);
}

}  // namespace sattn::kernels::cuda
