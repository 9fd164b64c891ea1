// The per-tile softmax steps of the block-sparse flash kernels (FA2 register layout: a warp owns 32 query
// rows as two m16 row blocks; a thread holds rows g and g + 8 of each, columns 2t and 2t + 1 of every n8
// block, with g = lane / 4 and t = lane % 4), over key tiles of kBlockSparseKvTile = 64: accumulator
// zeroing, the element mask of partial tiles, and the online softmax update. Used by block_sparse.cu and
// block_sparse_quant.cu.
#pragma once
#include <cstdint>

#include "sparse_attention/kernels/sparse/block_sparse.h"

namespace sattn::kernels::cuda::flash {

inline constexpr int kKeys = int(kBlockSparseKvTile);
static_assert(kKeys == 64, "the masks are one 64-bit word per row");

__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));  // exp2(-inf) = +0
  return y;
}

// Zeros a warp's accumulator fragments (two row blocks of N n8 blocks).
template <typename A, int N>
__device__ __forceinline__ void zero_fill(A (&acc)[2][N][4]) {
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int n = 0; n < N; ++n)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[mi][n][c] = A(0);
}

// -inf where the key is refused: bit (8nb + 2t + c) of rows[mi·2 + hh] is key 8nb + 2t + c of the tile for
// the thread's row 16mi + 8hh + g.
__device__ __forceinline__ void apply_mask(float s[2][kKeys / 8][4], const uint64_t rows[4], int lane) {
  const int t = lane % 4;
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh)
#pragma unroll
      for (int nb = 0; nb < kKeys / 8; ++nb)
#pragma unroll
        for (int c = 0; c < 2; ++c)
          if (!((rows[mi * 2 + hh] >> (nb * 8 + 2 * t + c)) & 1)) s[mi][nb][2 * hh + c] = -INFINITY;
}

// Online softmax over one tile: updates the running max m (in score units) and the thread-partial sum l of
// the thread's four rows, rescales o, and turns s into unnormalized probabilities exp2(scale_log2·(s - m))
// in [0, 1]. Scores already in log2 units pass scale_log2 = 1.
template <int D>
__device__ __forceinline__ void softmax_update(float s[2][kKeys / 8][4], float o[2][D / 8][4], float m[2][2], float l[2][2],
                                               float scale_log2) {
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float mx = -INFINITY;
#pragma unroll
      for (int nb = 0; nb < kKeys / 8; ++nb) mx = fmaxf(mx, fmaxf(s[mi][nb][2 * hh], s[mi][nb][2 * hh + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[mi][hh], mx);
      // A row with nothing attended so far keeps m = -inf; 0 as the reference then makes every p and alpha 0.
      const float ref = m_new == -INFINITY ? 0.f : m_new * scale_log2;
      const float alpha = fast_exp2(m[mi][hh] * scale_log2 - ref);
      m[mi][hh] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int nb = 0; nb < kKeys / 8; ++nb)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const float p = fast_exp2(fmaf(s[mi][nb][2 * hh + c], scale_log2, -ref));
          s[mi][nb][2 * hh + c] = p;
          sum += p;
        }
      l[mi][hh] = l[mi][hh] * alpha + sum;
#pragma unroll
      for (int nd = 0; nd < D / 8; ++nd) {
        o[mi][nd][2 * hh] *= alpha;
        o[mi][nd][2 * hh + 1] *= alpha;
      }
    }
}

}  // namespace sattn::kernels::cuda::flash
