// Shared-memory tiles and tensor-core shapes of the Hopper block-sparse kernel (block_sparse_sm90.cu), from
// CuTe: the 128-byte-swizzled K-major layouts wgmma reads its shared-memory operands in, and the
// warpgroup MMAs (S = Q·Kᵀ with both operands in shared memory; O += P·V with P in registers).
//
// Thread -> element map of every accumulator (S and O), for the softmax and the stores: with
// wg = thread / 128, w = (thread / 32) % 4, g = lane / 4, t = lane % 4, value v = c + 2r + 4n of a thread
// (c, r in {0, 1}, n < columns / 8) is row 64wg + 16w + 8r + g, column 8n + 2t + c. The same numbering
// makes an S accumulator the A operand of the P·V MMA: its k-block j holds values 8j..8j+7 (PTX ISA,
// "wgmma register fragments"; CuTe's CLayout_64xN and ALayout_64x16 say the same).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cute/arch/mma_sm90.hpp>
#include <cute/atom/mma_traits_sm90_gmma.hpp>
#include <cute/tensor.hpp>

#include "sparse_attention/kernels/sparse/block_sparse.h"

namespace sattn::kernels::cuda::sm90 {

inline constexpr int kBM = int(kBlockSparseQTile);   // query rows per CTA: two warpgroups of 64
inline constexpr int kBN = int(kBlockSparseKvTile);  // keys per tile
inline constexpr int kWarpgroups = kBM / 64;
inline constexpr int kThreads = kWarpgroups * 128;
static_assert(kBM == 128 && kBN == 64, "two m64 warpgroups per query tile, one n64 S MMA per key tile");

template <typename T>
struct CuteElement;
template <>
struct CuteElement<__nv_bfloat16> {
  using type = cute::bfloat16_t;
};
template <>
struct CuteElement<__half> {
  using type = cute::half_t;
};

// KN: keys per shared-memory stage and per S MMA, one layout tile (kBN) or, in sm90ws, two of them side by side.
template <typename T, int D, int KN = kBN>
struct Tiles {
  using E = typename CuteElement<T>::type;
  // [rows, D] with D contiguous, in 8-row x 128-byte swizzle atoms (D = 128 is two atom columns, each
  // holding all rows): the layout cp.async fills and wgmma's K-major descriptors read.
  using Q = decltype(cute::tile_to_shape(cute::GMMA::Layout_K_SW128_Atom<E>{},
                                         cute::Shape<cute::Int<kBM>, cute::Int<D>>{}));
  using KV = decltype(cute::tile_to_shape(cute::GMMA::Layout_K_SW128_Atom<E>{},
                                          cute::Shape<cute::Int<KN>, cute::Int<D>>{}));
  // The same V bytes seen as [D, keys]: P·V's B operand is N = D by K = keys, and V's D is contiguous, so B
  // is MN-major (wgmma transposes 16-bit B operands from shared memory; no transposed copy of V).
  using Vt = decltype(cute::composition(
      KV{}, cute::make_layout(cute::Shape<cute::Int<D>, cute::Int<KN>>{}, cute::GenRowMajor{})));
  // Two warpgroups stacked along M: each owns 64 query rows.
  using MmaS = decltype(cute::make_tiled_mma(
      cute::GMMA::ss_op_selector<E, E, float, cute::Shape<cute::_64, cute::Int<KN>, cute::Int<D>>,
                                 cute::GMMA::Major::K, cute::GMMA::Major::K>(),
      cute::Layout<cute::Shape<cute::Int<kWarpgroups>, cute::_1, cute::_1>>{}));
  using MmaO = decltype(cute::make_tiled_mma(
      cute::GMMA::rs_op_selector<E, E, float, cute::Shape<cute::_64, cute::Int<D>, cute::Int<KN>>,
                                 cute::GMMA::Major::K, cute::GMMA::Major::MN>(),
      cute::Layout<cute::Shape<cute::Int<kWarpgroups>, cute::_1, cute::_1>>{}));
  // P as the A operand of MmaO: 8 values per k-block of 16 keys, KN / 16 k-blocks (ordered as above).
  using PLayout = cute::Layout<cute::Shape<cute::Shape<cute::_2, cute::_2, cute::_2>, cute::_1, cute::Int<KN / 16>>>;

  static constexpr int kQElems = kBM * D, kKVElems = KN * D;
  // Q, `stages` K and `stages` V tiles, plus 1 KiB to align the base: a swizzle atom spans 1 KiB and the
  // descriptors assume atoms start on 1 KiB boundaries. block_sparse_sm90.cu runs three stages.
  static constexpr int smem_bytes(int stages) { return (kQElems + 2 * stages * kKVElems) * int(sizeof(T)) + 1024; }
};

// wgmma reads shared memory through the async proxy; cp.async wrote it through the generic one. Each
// thread fences its own completed copies before the barrier that publishes them to the MMAs.
__device__ __forceinline__ void fence_generic_to_async_smem() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

}  // namespace sattn::kernels::cuda::sm90
