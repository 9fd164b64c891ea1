// The per-tile steps of the Hopper block-sparse kernel (block_sparse_sm90.cu): the gathering row loads, the
// key masks of a tile, the online softmax on the S accumulators, P in the input dtype, and the epilogue that
// scatters the normalized rows. Thread -> element map of the accumulators: sm90_tile.cuh. The kernel runs
// 256 threads (sm90::kThreads).
#pragma once
#include <cstdint>
#include <type_traits>

#include "sparse_attention/kernels/sparse/cuda/block_sparse_args.h"
#include "sparse_attention/kernels/sparse/cuda/flash_softmax.cuh"
#include "sparse_attention/kernels/sparse/cuda/layout_order.cuh"
#include "sparse_attention/kernels/sparse/cuda/sm90_tile.cuh"
#include "sparse_attention/kernels/sparse/cuda/warp_mma.cuh"

namespace sattn::kernels::cuda::sm90 {

// Gathering row loads in two steps: row_tokens issues the perm look-ups of all the rows a thread copies
// (positions past the end look up the last row), copy_rows starts the 16-byte cp.async copies of ROWS
// layout positions from pos0 on (one batch and head; tokens `ld` elements apart) into the swizzled tile (a
// CuTe shared-memory tensor [ROWS, D]) once the look-ups arrived. Several row_tokens calls before their
// copy_rows pay one latency. Positions past the sequence end become zeros: a ragged tile's keys are masked,
// but 0 · NaN in P·V would still poison the row.
template <int D, int ROWS>
inline constexpr int kRowPasses = ROWS / (kThreads / (D / 8));

template <int D, int ROWS>
__device__ __forceinline__ void row_tokens(int32_t (&token)[kRowPasses<D, ROWS>], int pos0, const int32_t* perm,
                                           int seq_len) {
  constexpr int kRowsPerPass = kThreads / (D / 8);
  static_assert(ROWS % kRowsPerPass == 0, "whole passes");
  const int row0 = int(threadIdx.x) / (D / 8);
  if (perm != nullptr) {
#pragma unroll
    for (int i = 0; i < kRowPasses<D, ROWS>; ++i) token[i] = __ldg(perm + min(pos0 + i * kRowsPerPass + row0, seq_len - 1));
  } else {
#pragma unroll
    for (int i = 0; i < kRowPasses<D, ROWS>; ++i) token[i] = min(pos0 + i * kRowsPerPass + row0, seq_len - 1);
  }
}

template <int D, int ROWS, class Tile, typename T>
__device__ __forceinline__ void copy_rows(Tile& tile, const T* base, int64_t ld, int pos0,
                                          const int32_t (&token)[kRowPasses<D, ROWS>], int seq_len) {
  constexpr int kChunks = D / 8;
  constexpr int kRowsPerPass = kThreads / kChunks;
  const int chunk = int(threadIdx.x) % kChunks;
#pragma unroll
  for (int i = 0; i < kRowPasses<D, ROWS>; ++i) {
    const int row = i * kRowsPerPass + int(threadIdx.x) / kChunks;
    cp_async_16(cute::raw_pointer_cast(&tile(row, chunk * 8)), base + int64_t(token[i]) * ld + chunk * 8,
                pos0 + row < seq_len);
  }
}

// The allowed keys of this thread's two rows (row_base and row_base + 8) in key tile `tile`, the i-th the
// entry visits: a partial tile's 64-bit row masks, the ragged last tile's keys before the sequence end, else
// all. Returns whether any key can be masked (the caller then runs apply_key_masks). Args: BlockSparseArgs, or
// the quantized kernel's QuantArgs (the same seq_len and partial_masks).
template <class Args>
__device__ __forceinline__ bool key_masks(uint64_t (&rows)[2], const Args& a, const EntryTiles& tiles, int i, int tile,
                                          int row_base) {
  const bool partial = i >= tiles.num_full;
  const bool ragged_tile = a.seq_len % kBN != 0 && tile == (a.seq_len - 1) / kBN;
  rows[0] = rows[1] = ~uint64_t(0);
  if (partial) {
    const uint64_t* mask = a.partial_masks + int64_t(tiles.partial_begin + i - tiles.num_full) * kBM + row_base;
    rows[0] = __ldg(mask), rows[1] = __ldg(mask + 8);
  } else if (ragged_tile) {
    rows[0] = rows[1] = (uint64_t(1) << (a.seq_len - tile * kBN)) - 1;
  }
  return partial || ragged_tile;
}

// -inf for the S values of keys the masks leave out (t = lane % 4): value v is key 8 * (v / 4) + 2t + v % 2,
// and rows[2h + r] is row r's mask word of keys 64h..64h+63 (one layout tile, or sm90ws's two side by side).
// The thread's shift by 2t is done once per word, so every remaining shift is a constant.
template <class S, int N>
__device__ __forceinline__ void apply_key_masks(S& s, const uint64_t (&rows)[N], int t) {
  static_assert(decltype(cute::size(s))::value == 16 * N, "a mask word per row per 64 keys");
  uint64_t x[N];
#pragma unroll
  for (int w = 0; w < N; ++w) x[w] = rows[w] >> (2 * t);
#pragma unroll
  for (int v = 0; v < 16 * N; ++v) {
    const int n = v / 4, r = (v / 2) % 2, bit = 8 * (n % 8) + v % 2;
    if (!((x[2 * (n / 8) + r] >> bit) & 1)) s(v) = -INFINITY;
  }
}

// Online softmax over one key tile on a thread's S accumulators (two rows r, 16 or 32 values each, see
// sm90_tile.cuh), the same steps and the same -inf conventions as flash::softmax_update: the new running
// max m and sum l, s replaced by p, and alpha[r], the factor the row's O accumulators must be scaled by
// (rescale_o) before this tile's P·V adds to them.
template <class S>
__device__ __forceinline__ void softmax_rows(S& s, float (&m)[2], float (&l)[2], float (&alpha)[2], float scale_log2) {
  constexpr int kSCols = decltype(cute::size(s))::value / 4;  // n8 column groups
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float mx = -INFINITY;
#pragma unroll
    for (int n = 0; n < kSCols; ++n) mx = fmaxf(mx, fmaxf(s(4 * n + 2 * r), s(4 * n + 2 * r + 1)));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));  // the four threads of a row: lanes 4g..4g+3
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_new = fmaxf(m[r], mx);
    // Nothing attended so far: m stays -inf, and reference 0 makes every p and alpha 0.
    const float ref = m_new == -INFINITY ? 0.f : m_new * scale_log2;
    alpha[r] = flash::fast_exp2(m[r] * scale_log2 - ref);
    m[r] = m_new;
    float sum = 0.f;
#pragma unroll
    for (int n = 0; n < kSCols; ++n)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const float p = flash::fast_exp2(fmaf(s(4 * n + 2 * r + c), scale_log2, -ref));
        s(4 * n + 2 * r + c) = p;
        sum += p;
      }
    l[r] = l[r] * alpha[r] + sum;
  }
}

// One warpgroup MMA batch C (+)= A·B over the k-blocks of A, committed and not waited for: the S MMA (A =
// Q's descriptors, B = a key tile's descriptors) and the P·V MMA (A = P's register fragment). zero_first
// starts C from zero instead of adding to it. Register operands are fenced so that ptxas keeps their writes
// before the batch and their reads after its wait.
template <class Mma, class A, class B, class C>
__device__ __forceinline__ void issue_gemm(Mma& mma, A& a, const B& b, C& c, bool zero_first) {
  cute::warpgroup_fence_operand(c);
  if constexpr (!std::is_same_v<typename A::value_type, cute::GmmaDescriptor>) cute::warpgroup_fence_operand(a);
  cute::warpgroup_arrive();
  mma.accumulate_ = zero_first ? cute::GMMA::ScaleOut::Zero : cute::GMMA::ScaleOut::One;
#pragma unroll
  for (int kb = 0; kb < cute::size<2>(a); ++kb) {
    cute::gemm(mma, a(cute::_, cute::_, kb), b(cute::_, cute::_, kb), c);
    mma.accumulate_ = cute::GMMA::ScaleOut::One;
  }
  cute::warpgroup_commit_batch();
}

// Skipped, warp-uniformly, when no row of the warp has a new maximum (alpha exactly 1: the product would
// change nothing). Past the first key tiles that is the common case, and the D / 2 multiplies per thread
// sit on the warpgroup's path between two MMA issues.
template <int D, class O>
__device__ __forceinline__ void rescale_o(O& o, const float (&alpha)[2]) {
  if (!__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) return;
#pragma unroll
  for (int r = 0; r < 2; ++r)
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      o(4 * n + 2 * r) *= alpha[r];
      o(4 * n + 2 * r + 1) *= alpha[r];
    }
}

// Tile i's softmax on its S accumulators once their MMA retired (the caller's wait): the partial tile's
// masks, then the online softmax (alpha: O's rescale factors for rescale_and_pack).
template <class S, int N>
__device__ __forceinline__ void softmax_tile(S& s_acc, const uint64_t (&rows)[N], bool masked, float (&m)[2],
                                             float (&l)[2], float (&alpha)[2], float scale_log2, int t) {
  cute::warpgroup_fence_operand(s_acc);
  if (masked) apply_key_masks(s_acc, rows, t);
  softmax_rows(s_acc, m, l, alpha, scale_log2);
}

// P in the input dtype, pairs packed as block_sparse.cu packs them (round to nearest even), into the A
// fragment of the P·V MMA.
template <typename T, class S, class P>
__device__ __forceinline__ void pack_p(const S& s, P& p) {
  uint32_t* p2 = reinterpret_cast<uint32_t*>(cute::raw_pointer_cast(p.data()));
#pragma unroll
  for (int j = 0; j < decltype(cute::size(s))::value / 2; ++j) p2[j] = pack2<T>(s(2 * j), s(2 * j + 1));
}

// Once the P·V before it retired (the caller's wait): O's rescale by alpha and P(i) into the A fragment.
template <typename T, int D, class O, class P, class S>
__device__ __forceinline__ void rescale_and_pack(O& o_acc, P& p_frag, const S& s_acc, const float (&alpha)[2]) {
  cute::warpgroup_fence_operand(o_acc);
  cute::warpgroup_fence_operand(p_frag);
  rescale_o<D>(o_acc, alpha);
  pack_p<T>(s_acc, p_frag);
}

// Normalizes this thread's O rows and stages them, in the input dtype, in the same rows of the Q tile sQ
// (the caller has retired its warpgroup's last S MMA, and no other warpgroup reads those rows).
template <typename T, int D, class O, class QTile>
__device__ __forceinline__ void stage_rows(const O& o, const float (&l)[2], QTile& sQ, int row_base, int t) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float sum = l[r];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const float inv = sum > 0.f ? 1.f / sum : 0.f;  // nothing attended: zeros
    const int row = row_base + 8 * r;
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
      *reinterpret_cast<uint32_t*>(cute::raw_pointer_cast(&sQ(row, 8 * n + 2 * t))) =
          pack2<T>(o(4 * n + 2 * r) * inv, o(4 * n + 2 * r + 1) * inv);
  }
}

// Stores the staged rows [row0, row0 + rows) of sQ to their natural positions in 16-byte chunks, `threads`
// threads (thread `idx` of them) after the barrier that published the staging.
template <typename T, int D, class QTile>
__device__ __forceinline__ void store_staged(const QTile& sQ, T* out, int64_t out_ld, const int32_t* perm, int q0,
                                             int seq_len, int row0, int rows, int idx, int threads) {
  constexpr int kChunks = D / 8;
#pragma unroll 4
  for (; idx < rows * kChunks; idx += threads) {
    const int row = row0 + idx / kChunks, chunk = idx % kChunks;
    const int pos = q0 + row;
    if (pos < seq_len)
      *reinterpret_cast<uint4*>(out + natural_token(perm, pos) * out_ld + chunk * 8) =
          *reinterpret_cast<const uint4*>(cute::raw_pointer_cast(&sQ(row, chunk * 8)));
  }
}

// The epilogue of the 256-thread kernel: every thread stages its rows, one barrier, every thread stores.
template <typename T, int D, class O, class QTile>
__device__ __forceinline__ void store_rows(const O& o, const float (&l)[2], QTile& sQ, T* out, int64_t out_ld,
                                           const int32_t* perm, int q0, int seq_len, int row_base, int t) {
  stage_rows<T, D>(o, l, sQ, row_base, t);
  __syncthreads();
  store_staged<T, D>(sQ, out, out_ld, perm, q0, seq_len, 0, kBM, int(threadIdx.x), kThreads);
}

}  // namespace sattn::kernels::cuda::sm90
