// Shared-memory tiles, tensor-core shapes and per-tile steps of the Hopper quantized block-sparse kernel
// (block_sparse_quant_sm90.cu), from CuTe. 8-bit wgmma reads both operands K-major only, so every tile is
// stored with its reduction dimension contiguous: Q [128, D] and K [64, D] (channels), the transposed V tile
// [D, 64] (keys, as the pre-pass wrote vt8). Rows of 64 bytes (D = 64, and the 64 keys of V) sit in 64-byte
// swizzle atoms, rows of 128 bytes (D = 128) in 128-byte ones; 16-byte chunks stay contiguous in both, so
// cp.async fills them chunk by chunk.
// Accumulators (S, P·V, O) follow sm90_tile.cuh's thread -> element map: value v = c + 2r + 4n of a thread is
// row 64wg + 16w + 8r + g, column 8n + 2t + c.
#pragma once
#include <cstdint>
#include <type_traits>

#include "sparse_attention/kernels/sparse/cuda/block_sparse_quant_args.h"
#include "sparse_attention/kernels/sparse/cuda/layout_order.cuh"
#include "sparse_attention/kernels/sparse/cuda/quant_mma.cuh"
#include "sparse_attention/kernels/sparse/cuda/sm90_tile.cuh"
#include "sparse_attention/kernels/sparse/cuda/warp_mma.cuh"

namespace sattn::kernels::cuda::quant_sm90 {

using sm90::kBM;
using sm90::kBN;
using sm90::kThreads;
using sm90::kWarpgroups;

template <int D, bool FP8>
struct Tiles {
  using PT = std::conditional_t<FP8, cute::float_e4m3_t, uint8_t>;  // P: e4m3(448·p) or u8(255·p)
  using VT = std::conditional_t<FP8, cute::float_e4m3_t, int8_t>;
  using PvAcc = std::conditional_t<FP8, float, int32_t>;
  using RowAtom = std::conditional_t<D == 128, cute::GMMA::Layout_K_SW128_Atom<int8_t>,
                                     cute::GMMA::Layout_K_SW64_Atom<int8_t>>;
  using Q = decltype(cute::tile_to_shape(RowAtom{}, cute::Shape<cute::Int<kBM>, cute::Int<D>>{}));
  using K = decltype(cute::tile_to_shape(RowAtom{}, cute::Shape<cute::Int<kBN>, cute::Int<D>>{}));
  using Vt = decltype(cute::tile_to_shape(cute::GMMA::Layout_K_SW64_Atom<VT>{},
                                          cute::Shape<cute::Int<D>, cute::Int<kBN>>{}));
  // S = Q·Kᵀ: m64n64k32 s8·s8 -> s32, both from shared memory; O' = P·V: m64nDk32, P from registers.
  using MmaS = decltype(cute::make_tiled_mma(
      cute::GMMA::ss_op_selector<int8_t, int8_t, int32_t, cute::Shape<cute::_64, cute::Int<kBN>, cute::Int<D>>,
                                 cute::GMMA::Major::K, cute::GMMA::Major::K>(),
      cute::Layout<cute::Shape<cute::Int<kWarpgroups>, cute::_1, cute::_1>>{}));
  using MmaO = decltype(cute::make_tiled_mma(
      cute::GMMA::rs_op_selector<PT, VT, PvAcc, cute::Shape<cute::_64, cute::Int<D>, cute::Int<kBN>>,
                                 cute::GMMA::Major::K, cute::GMMA::Major::K>(),
      cute::Layout<cute::Shape<cute::Int<kWarpgroups>, cute::_1, cute::_1>>{}));
  // P as MmaO's A operand: 16 bytes (four registers) per k-block of 32 keys, kBN / 32 k-blocks. CuTe's
  // ALayout_64x32 (= PTX's 8-bit wgmma A fragment = mma.sync m16n8k32's A): register j of a k-block holds
  // row g + 8 (j % 2), keys 16 (j / 2) + 4t .. +3.
  using PLayout = cute::Layout<cute::Shape<cute::Shape<cute::_4, cute::_2, cute::_2>, cute::_1, cute::Int<kBN / 32>>>;

  static constexpr int kQBytes = kBM * D, kKBytes = kBN * D, kVBytes = D * kBN;
  // Q, `stages` K and V tiles, plus 1 KiB to align the base (swizzle atoms start on 1 KiB boundaries).
  static constexpr int smem_bytes(int stages) { return kQBytes + stages * (kKBytes + kVBytes) + 1024; }
};

// A thread's 16-byte chunk in a tile of rows of ROW_BYTES: the thread copies chunk thread % (ROW_BYTES / 16)
// of rows thread / (ROW_BYTES / 16) + kRowsPerPass · i. chunk_offset is the first one's byte offset in the
// swizzled tile (layout TILE); the others follow at multiples of kRowsPerPass · ROW_BYTES, because each row
// is one swizzle atom wide (the atoms stack along the rows) and the swizzle permutes chunks only inside
// 8-row atoms (kRowsPerPass is a multiple of 8). Computed once per kernel: per-stage swizzled addresses
// kept in registers pushed the D = 128 kernel into spills.
template <int ROW_BYTES>
inline constexpr int kRowsPerPass = kThreads / (ROW_BYTES / 16);

template <class TILE, int ROW_BYTES>
__device__ __forceinline__ int chunk_offset() {
  static_assert(kRowsPerPass<ROW_BYTES> % 8 == 0, "passes of whole swizzle atoms");
  constexpr int kChunks = ROW_BYTES / 16;
  return int(TILE{}(int(threadIdx.x) / kChunks, (int(threadIdx.x) % kChunks) * 16));
}

// Starts the thread's cp.async copies of a tile of ROWS rows of ROW_BYTES (rows `ld` bytes apart in global
// memory, from `src`) into shared memory at `tile`. The pre-pass padded every buffer to whole query tiles,
// so every row exists.
template <int ROWS, int ROW_BYTES, typename E>
__device__ __forceinline__ void copy_tile(E* tile, int offset, const uint8_t* src, int64_t ld) {
  constexpr int kChunks = ROW_BYTES / 16, kPass = kRowsPerPass<ROW_BYTES>;
  static_assert(ROWS % kPass == 0, "whole passes");
  const uint8_t* from = src + (int(threadIdx.x) / kChunks) * ld + (int(threadIdx.x) % kChunks) * 16;
  uint8_t* to = reinterpret_cast<uint8_t*>(tile) + offset;
#pragma unroll
  for (int i = 0; i < ROWS / kPass; ++i) cp_async_16(to + i * kPass * ROW_BYTES, from + i * kPass * ld, true);
}

// The low bytes of four words, a's in the lowest (three PRMTs).
__device__ __forceinline__ uint32_t low_bytes4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  const uint32_t lo = __byte_perm(a, b, 0x0040), hi = __byte_perm(c, d, 0x0040);
  return __byte_perm(lo, hi, 0x5410);
}

// pack_p4<false> (four P values as u8 round(255·p), x0 in the lowest byte) without F2I, which issues at a
// quarter of the rate: 255·p rounded to f32 as there, then added to 1.5 · 2^23, which rounds it to an
// integer (to nearest even, as __float2uint_rn) in the float's low mantissa bits. The same bytes for p in
// [0, 1], where pack_p4's clamp to 255 never acts (the softmax's p = exp2(s - max) <= 1). __fmul_rn and
// __fadd_rn keep the two roundings apart (a fused multiply-add would round once). low_bytes4's PRMTs are
// spelled out: called through it, ptxas scheduled the sm90 int8 kernel differently (356 SASS lines moved,
// session 24, not timed), so the measured form stays.
__device__ __forceinline__ uint32_t pack_u8x4(float x0, float x1, float x2, float x3) {
  auto level = [](float p) { return __float_as_uint(__fadd_rn(__fmul_rn(p, 255.f), 12582912.f)); };
  const uint32_t lo = __byte_perm(level(x0), level(x1), 0x0040), hi = __byte_perm(level(x2), level(x3), 0x0040);
  return __byte_perm(lo, hi, 0x5410);
}

// P (in [0, 1], the S values after the softmax) as 8-bit A fragments, the bytes block_sparse_quant.cu packs
// (pack_p4; pack_u8x4 for u8): register j of k-block kb takes the thread's row r = j % 2 in S columns 2t, 2t+1 of the n8
// blocks n = 4kb + 2 (j / 2) and n + 1. So byte 4t + i of each 16 keys is key 8 (i / 2) + 2t + i % 2, the
// order the pre-pass stored V's keys in (v_key): the mma.sync kernel's order serves wgmma unchanged.
// CODES: s already holds each P's e4m3 code in its low byte (FP8 only; quant_ws_softmax.cuh's softmax_rows).
template <bool FP8, bool CODES = false, class S, class P>
__device__ __forceinline__ void pack_p(const S& s, P& p) {
  static_assert(FP8 || !CODES, "codes are e4m3");
  uint32_t* w = reinterpret_cast<uint32_t*>(cute::raw_pointer_cast(p.data()));
  constexpr int kBlocks = decltype(cute::size(s))::value / 16;  // k-blocks of 32 keys (one or two key tiles)
#pragma unroll
  for (int kb = 0; kb < kBlocks; ++kb)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int n = 4 * kb + 2 * (j / 2), r = j % 2;
      const float x0 = s(4 * n + 2 * r), x1 = s(4 * n + 2 * r + 1), x2 = s(4 * (n + 1) + 2 * r),
                  x3 = s(4 * (n + 1) + 2 * r + 1);
      w[4 * kb + j] = CODES ? low_bytes4(__float_as_uint(x0), __float_as_uint(x1), __float_as_uint(x2),
                                         __float_as_uint(x3))
                            : FP8 ? pack_p4<true>(x0, x1, x2, x3) : pack_u8x4(x0, x1, x2, x3);
    }
}

// o · v_scale(channel) / (P scale · row sum), as block_sparse_quant.cu's epilogue, two channels per 32-bit
// store, rows scattered to their natural positions; zeros for rows that attended nothing.
// kWholeSums: l already holds each row's whole sum, not the thread's share (sm90ws sums P on the tensor core).
template <typename T, int D, bool kWholeSums = false, class O>
__device__ __forceinline__ void store_rows(const O& o, const float (&l)[2], const float* v_scale, float inv_p_scale,
                                           T* out, int64_t out_ld, const int32_t* perm, int q0, int seq_len,
                                           int row_base, int t) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float sum = l[r];
    if constexpr (!kWholeSums) {
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    }
    const float inv = sum > 0.f ? inv_p_scale / sum : 0.f;
    const int pos = q0 + row_base + 8 * r;
    if (pos >= seq_len) continue;
    T* row = out + natural_token(perm, pos) * out_ld;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
      const int c = 8 * n + 2 * t;
      *reinterpret_cast<uint32_t*>(row + c) = pack2<T>(o(4 * n + 2 * r) * __ldg(v_scale + c) * inv,
                                                       o(4 * n + 2 * r + 1) * __ldg(v_scale + c + 1) * inv);
    }
  }
}

}  // namespace sattn::kernels::cuda::quant_sm90
