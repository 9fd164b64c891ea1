// Block-sparse flash attention on Hopper's warpgroup MMA (wgmma, sm_90a only; SparseKernel::Sm90, "sm90").
// Same contract, arguments and numerics as block_sparse.cu (the mma.sync kernel): one CTA per (batch, head,
// query tile of 128 rows), key tiles of 64 from the layout's CSR lists (full first, then partial), rows
// gathered through the perm in the loads and scattered back in the stores, the partial tiles' 64-bit row
// masks, the ragged last key tile, f32 online softmax with exp2, P rounded to the input dtype before P·V,
// zeros for rows that attend nothing. Its output is bit-identical to the mma.sync kernel's on the H200.
//
// Two consumer warpgroups (256 threads), each owning 64 query rows; every thread issues cp.async row copies
// (a TMA tile copy cannot gather rows through the perm). Per key tile a warpgroup runs
//   S = Q·Kᵀ   wgmma m64n64k16, Q and K from 128-byte-swizzled shared memory, f32 accumulators,
//   mask and online softmax on the accumulator registers (sm90_steps.cuh, sm90_tile.cuh),
//   O += P·V   wgmma m64nDk16, P from registers (the S accumulators rounded to 16 bits), V from shared
//              memory read transposed (MN-major).
// The schedule:
//  - Intra-warpgroup overlap (FA3): iteration i issues S(i) = Q·K(i)ᵀ and then O += P(i-1)·V(i-1) as two
//    wgmma batches, waits for the first only (warpgroup_wait<1>), and runs tile i's mask and softmax while
//    the tensor cores work on the P·V. O's rescale by tile i's alpha and P(i)'s packing wait for that P·V
//    (warpgroup_wait<0> at the top of iteration i+1), so O sees the operations in the plain order
//      O *= alpha(i-1), O += P(i-1)·V(i-1), O *= alpha(i), O += P(i)·V(i), ...
//    There are num_tiles + 1 iterations: the first (peeled) has no P·V, the last (peeled) only the P·V of
//    the last tile. (In one basic block ptxas hoisted the wait above the whole softmax; the loop's back
//    edge stops that.)
//  - A 3-stage K/V ring and one barrier per iteration: iteration i's barrier sees K(i) and V(i-1) landed
//    (commit group i = {K(i), V(i-1)}; group 0 also holds Q) and every warpgroup's MMAs of iteration i-1
//    retired (they read K(i-1) and V(i-2)). After it, while iteration i's MMAs read K(i) (K stage i % 3)
//    and V(i-1) (V stage (i-1) % 3), the CTA loads group i+2 = {K(i+2), V(i+1)} into the stages of K(i-1)
//    and V(i-2): loads run two iterations ahead. They are issued after the MMAs.
//  - The rows' perm look-ups (sm90::row_tokens) run one iteration before their copies (copy_rows), in
//    registers, so no cp.async waits for a look-up.
// nvcc 13.0: 214 registers at D = 128, 159 at D = 64 (one CTA per SM; asking for two at D = 64 spills),
// 129 / 65 KiB of shared memory. Session 9 replaced a first wgmma kernel without the overlap and with
// double buffering, which took 1.19-1.60x this one's time (docs/performance.md).
//
// Only the sm_90a pass compiles the body (__CUDA_ARCH_FEAT_SM90_ALL); the sm_80 PTX pass of the same file
// gets a trap, and block_sparse_sm90_device_refusal refuses devices the body was not built for.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <sstream>

#include "cuda/common.cuh"
#include "cuda/cuda_ops.h"
#include "cuda/device_state.h"
#include "sparse_attention/kernels/sparse/cuda/block_sparse_sm90.h"
#include "sparse_attention/kernels/sparse/cuda/sm90_steps.cuh"

#ifndef DITRUN_SM90A_BUILT
#define DITRUN_SM90A_BUILT 0
#endif

namespace sattn::kernels::cuda {

namespace {

using namespace cute;
using sm90::kBM;
using sm90::kBN;
using sm90::kThreads;
using sm90::copy_rows;
using sm90::kRowPasses;
using sm90::row_tokens;

constexpr int kStages = 3;

template <typename T, int D>
__global__ void __launch_bounds__(kThreads, 1) block_sparse_sm90_kernel(const BlockSparseArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Tiles = sm90::Tiles<T, D>;
  using E = typename Tiles::E;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t misalign = smem_address(smem_raw) & 1023u;
  E* qs = reinterpret_cast<E*>(smem_raw + (misalign == 0 ? 0 : 1024 - misalign));
  E* ks = qs + Tiles::kQElems;             // kStages stages of [kBN, D]
  E* vs = ks + kStages * Tiles::kKVElems;  // kStages stages of [kBN, D]
  Tensor sQ = make_tensor(make_smem_ptr(qs), typename Tiles::Q{});
  auto k_stage = [&](int s) { return make_tensor(make_smem_ptr(ks + s * Tiles::kKVElems), typename Tiles::KV{}); };
  auto v_stage = [&](int s) { return make_tensor(make_smem_ptr(vs + s * Tiles::kKVElems), typename Tiles::KV{}); };
  auto vt_stage = [&](int s) { return make_tensor(make_smem_ptr(vs + s * Tiles::kKVElems), typename Tiles::Vt{}); };

  const auto [qt, h, b] = cta_entry(a);
  const int tid = int(threadIdx.x), lane = tid % 32;
  const int q0 = qt * kBM;
  T* out = static_cast<T*>(a.out) + (int64_t(b) * a.seq_len * a.heads + h) * D;
  const int64_t out_ld = int64_t(a.heads) * D;
  const int32_t* perm = head_order(a.perm, a.head_perm, a.layout_heads, a.seq_len, h);

  const EntryTiles tiles = entry_tiles(a, b, h, qt);
  const int num_tiles = tiles.num_tiles;
  if (num_tiles == 0) {
    zero_rows<D, kThreads>(out, out_ld, perm, q0, kBM, a.seq_len);
    return;
  }

  const E* qg = reinterpret_cast<const E*>(static_cast<const T*>(a.q) + b * a.q_stride[0] + h * a.q_stride[2]);
  const E* kg = reinterpret_cast<const E*>(static_cast<const T*>(a.k) + b * a.k_stride[0] + h * a.k_stride[2]);
  const E* vg = reinterpret_cast<const E*>(static_cast<const T*>(a.v) + b * a.v_stride[0] + h * a.v_stride[2]);

  // Commit group j = {K(j), V(j-1)} (stage j % 3 and (j-1) % 3); group 0 = {Q, K(0)}. The prologue commits
  // groups 0 and 1, iteration i group i+2 (empty past the end: the waits count groups).
  // tile, next, after, later: the tiles i, i+1, i+2, i+3 the entry visits (-1 past the end), at the start
  // of iteration i. k_tok and v_tok: the natural tokens of the rows of group i+2 (K(i+2), V(i+1)), looked up
  // one iteration before their copies start, so that no copy waits for a look-up.
  int tile = tiles.at(0), next = tiles.at(1), after = tiles.at(2), later = tiles.at(3);
  int32_t k_tok[kRowPasses<D, kBN>], v_tok[kRowPasses<D, kBN>];
  {
    int32_t q_tok[kRowPasses<D, kBM>], kv_tok[kRowPasses<D, kBN>], k1_tok[kRowPasses<D, kBN>];
    row_tokens<D, kBM>(q_tok, q0, perm, a.seq_len);
    row_tokens<D, kBN>(kv_tok, tile * kBN, perm, a.seq_len);  // K(0) and V(0)
    if (next >= 0) row_tokens<D, kBN>(k1_tok, next * kBN, perm, a.seq_len);
    if (after >= 0) row_tokens<D, kBN>(k_tok, after * kBN, perm, a.seq_len);  // group 2
    if (next >= 0) row_tokens<D, kBN>(v_tok, next * kBN, perm, a.seq_len);
    auto k0 = k_stage(0), v0 = v_stage(0);
    copy_rows<D, kBM>(sQ, qg, a.q_stride[1], q0, q_tok, a.seq_len);
    copy_rows<D, kBN>(k0, kg, a.k_stride[1], tile * kBN, kv_tok, a.seq_len);
    cp_async_commit();
    copy_rows<D, kBN>(v0, vg, a.v_stride[1], tile * kBN, kv_tok, a.seq_len);
    if (next >= 0) {
      auto k1 = k_stage(1);
      copy_rows<D, kBN>(k1, kg, a.k_stride[1], next * kBN, k1_tok, a.seq_len);
    }
    cp_async_commit();
  }

  typename Tiles::MmaS mma_s;
  typename Tiles::MmaO mma_o;
  auto thr_s = mma_s.get_thread_slice(tid);
  auto thr_o = mma_o.get_thread_slice(tid);
  Tensor tSrQ = thr_s.partition_fragment_A(sQ);  // descriptors of this warpgroup's 64 rows, per k-block
  Tensor s_acc = partition_fragment_C(mma_s, Shape<Int<kBM>, Int<kBN>>{});
  Tensor o_acc = partition_fragment_C(mma_o, Shape<Int<kBM>, Int<D>>{});
  Tensor p_frag = make_tensor<E>(typename Tiles::PLayout{});  // P(i-1) while its P·V runs
  static_assert(decltype(size(s_acc))::value == 32 && decltype(size(p_frag))::value == 32, "one S value per P value");
  static_assert(decltype(size(o_acc))::value == D / 2, "D / 8 column groups of 4 values");
  clear(o_acc);
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  // This thread's two query rows inside the tile (sm90_tile.cuh's map): rows 8r + row_base.
  const int row_base = (tid / 128) * 64 + ((tid / 32) % 4) * 16 + lane / 4, t = lane % 4;

  // The steps of iteration i, as lambdas so that the first iteration (no P·V), the steady ones and the last
  // (only the last P·V) are straight-line code: ptxas serializes the wgmma pipeline when it cannot prove
  // that nothing reads an in-flight accumulator.
  auto barrier = [&]() {
    cp_async_wait<1>();
    sm90::fence_generic_to_async_smem();
    __syncthreads();  // group i (K(i), V(i-1)) landed for every thread; all MMAs of iteration i-1 retired
  };
  auto issue_s = [&](int st) {  // S = Q · K(i)ᵀ
    sm90::issue_gemm(mma_s, tSrQ, thr_s.partition_fragment_B(k_stage(st)), s_acc, true);
  };
  auto issue_pv = [&](int st) {  // O += P(i-1) · V(i-1)
    sm90::issue_gemm(mma_o, p_frag, thr_o.partition_fragment_B(vt_stage(st)), o_acc, false);
  };
  // Group i+2 into the stages the barrier freed: K(i+2) into K(i-1)'s, V(i+1) into V(i-2)'s.
  // Then the look-ups of group i+3 (K(i+3), V(i+2)) for the next iteration, and the tile after those.
  // Returns tile i+4.
  auto load_ahead = [&](int i, int k_st, int v_st) {
    if (after >= 0) {
      auto kn = k_stage(k_st);
      copy_rows<D, kBN>(kn, kg, a.k_stride[1], after * kBN, k_tok, a.seq_len);
    }
    if (next >= 0) {
      auto vn = v_stage(v_st);
      copy_rows<D, kBN>(vn, vg, a.v_stride[1], next * kBN, v_tok, a.seq_len);
    }
    cp_async_commit();
    if (later >= 0) row_tokens<D, kBN>(k_tok, later * kBN, perm, a.seq_len);
    if (after >= 0) row_tokens<D, kBN>(v_tok, after * kBN, perm, a.seq_len);
    return tiles.at(i + 4);
  };
  // Tile i's softmax once its S retired (the caller's wait), then, once the P·V before it retired too (the
  // caller's wait), O's rescale and P(i) into the A fragment.
  auto softmax = [&](const uint64_t (&rows)[2], bool masked, float (&alpha)[2]) {
    sm90::softmax_tile(s_acc, rows, masked, m, l, alpha, a.scale_log2, t);
  };
  auto rescale_and_pack = [&](const float (&alpha)[2]) { sm90::rescale_and_pack<T, D>(o_acc, p_frag, s_acc, alpha); };

  // Iteration i ends with tile i's softmax running while P(i-1)·V(i-1) is in flight; the wait for that P·V,
  // O's rescale and P(i)'s packing open iteration i+1. They must: ptxas schedules a wgmma wait as early as
  // its basic block allows, and a wait<0> after the softmax in the same block was hoisted above it (no
  // overlap left). The loop's back edge is a boundary it cannot hoist across.
  // Tile i's key masks (sm90::key_masks) are read during iteration i-1, where the next ones (next_rows,
  // next_masked) are read while this one's are in use.
  float alpha[2];
  uint64_t next_rows[2];
  bool next_masked = false;
  {  // i = 0: S(0) alone
    barrier();
    uint64_t rows[2];
    const bool masked = sm90::key_masks(rows, a, tiles, 0, tile, row_base);
    issue_s(0);
    const int far = load_ahead(0, kStages - 1, 1);
    if (num_tiles > 1) next_masked = sm90::key_masks(next_rows, a, tiles, 1, next, row_base);
    warpgroup_wait<0>();
    softmax(rows, masked, alpha);
    tile = next, next = after, after = later, later = far;
  }
  int stage = 1;  // i % kStages: K(i)'s stage, and V(i)'s
  for (int i = 1; i < num_tiles; ++i) {
    const int prev = stage == 0 ? kStages - 1 : stage - 1;  // (i - 1) % 3 == (i + 2) % 3
    const int succ = stage == kStages - 1 ? 0 : stage + 1;  // (i + 1) % 3 == (i - 2) % 3
    warpgroup_wait<0>();  // P(i-2)·V(i-2) retired: O and P's registers are free
    rescale_and_pack(alpha);  // tile i-1's
    barrier();
    const uint64_t rows[2] = {next_rows[0], next_rows[1]};  // tile i's
    const bool masked = next_masked;
    issue_s(stage);
    issue_pv(prev);
    const int far = load_ahead(i, prev, succ);
    if (i + 1 < num_tiles) next_masked = sm90::key_masks(next_rows, a, tiles, i + 1, next, row_base);
    warpgroup_wait<1>();  // S(i) retired; P(i-1)·V(i-1) runs on during the softmax
    softmax(rows, masked, alpha);
    tile = next, next = after, after = later, later = far;
    stage = succ;
  }
  {  // i = num_tiles: the last tile's P·V
    warpgroup_wait<0>();
    rescale_and_pack(alpha);
    barrier();
    issue_pv(stage == 0 ? kStages - 1 : stage - 1);
    warpgroup_wait<0>();
    warpgroup_fence_operand(o_acc);
  }
  cp_async_wait<0>();

  // Normalize and store, staged in this warpgroup's own rows of the Q tile (its last S MMA is complete).
  sm90::store_rows<T, D>(o_acc, l, sQ, out, out_ld, perm, q0, a.seq_len, row_base, t);
#else
  __trap();  // not built for this device: block_sparse_sm90_device_refusal refuses it before any launch
#endif
}

template <typename T, int D>
void launch(const rt::Context& ctx, const BlockSparseArgs& a, dim3 grid) {
  constexpr int smem_bytes = sm90::Tiles<T, D>::smem_bytes(kStages);
  DITRUN_CUDA_CHECK(cudaFuncSetAttribute(block_sparse_sm90_kernel<T, D>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes));
  block_sparse_sm90_kernel<T, D><<<grid, kThreads, smem_bytes, ctx.cuda().stream>>>(a);
}

}  // namespace

std::string block_sparse_sm90_device_refusal(const rt::Context& ctx) {
  if (!DITRUN_SM90A_BUILT)
    return "the wgmma block-sparse kernel needs sm_90a code, and this build's CMAKE_CUDA_ARCHITECTURES has no 90a "
           "(reconfigure with -DCMAKE_CUDA_ARCHITECTURES=\"90a 80-virtual\")";
  const rt::cuda::DeviceState& dev = ctx.cuda();
  if (dev.cc_major != 9 || dev.cc_minor != 0) {
    std::ostringstream why;
    why << "the wgmma block-sparse kernel runs on compute capability 9.0 (Hopper), got " << dev.cc_major << "."
        << dev.cc_minor << " on " << dev.name << " (use the sm80 kernel)";
    return why.str();
  }
  return "";
}

void launch_block_sparse_sm90(const rt::Context& ctx, const BlockSparseArgs& a, bool bf16, int d, unsigned q_tiles,
                               unsigned heads, unsigned batch) {
  const dim3 grid{q_tiles, heads, batch};
  if (d == 64) bf16 ? launch<__nv_bfloat16, 64>(ctx, a, grid) : launch<__half, 64>(ctx, a, grid);
  else bf16 ? launch<__nv_bfloat16, 128>(ctx, a, grid) : launch<__half, 128>(ctx, a, grid);
  rt::cuda::check_launch(ctx, "block_sparse_attention (sm90)");
}

}  // namespace sattn::kernels::cuda
