// Quantized block-sparse flash attention on Hopper's warpgroup MMA (wgmma, sm_90a only): the contract and
// numerics of block_sparse_quant.cu (the mma.sync kernel) with the tile schedule of block_sparse_sm90.cu.
// It reads the pre-pass's 8-bit operands (quant_prepass.cuh: q8, k8, vt8 in layout order, padded to whole
// query tiles, with their scales), so its loads are plain 16-byte cp.async tile copies; the output rows are
// scattered back through perm. One CTA of two consumer warpgroups (256 threads, 64 query rows each) per
// (batch, head, query tile of 128); key tiles of 64 from the layout's lists, full first, then partial.
// Per key tile a warpgroup runs
//   S = Q·Kᵀ     wgmma m64n64k32 s8·s8 -> s32 (exact), Q and K K-major in swizzled shared memory, times
//                q_scale(32 rows)·k_scale(tile)·scale·log2(e);
//   the masks and the f32 online softmax with exp2 on the accumulator registers (sm90_steps.cuh);
//   O' = P·V     into fresh registers: wgmma m64nDk32 u8·s8 -> s32 (P = 255·p; `int8`, `int4`) or
//                e4m3·e4m3 -> f32 (P = 448·p; `int8-fp8pv`), P from registers, V's transposed tile (vt8)
//                K-major from shared memory;
//   O = O·alpha + O'  in f32 (the two-level accumulation of the mma.sync kernel).
// Epilogue: o · v_scale(channel) / (P scale · row sum); zeros for rows that attend nothing.
//
// How P reaches the P·V wgmma: from registers, unchanged from the mma.sync kernel. 8-bit wgmma's A register
// fragment (ALayout_64x32) is the m16n8k32 A fragment per warp, and the S accumulators sit where m16n8k16's
// do, so the thread's P bytes fill its A registers in the order the pre-pass already permuted V's keys in
// (v_key: inside every 16 keys, position 4t + i holds key 8 (i / 2) + 2t + i % 2). No shared-memory round
// trip for P, no second pre-pass order, and the same vt8 buffer feeds both kernels.
//
// Same operations in the same order as the mma.sync kernel (integer dot products are exact; every f32 step
// is the same expression): on the H200 its int8 / int4 outputs were bit-identical to the mma.sync kernel's
// (tests/cuda/test_block_sparse_quant.cpp). The e4m3 P·V accumulates in f32 inside the tensor core, whose
// summation order differs between mma.sync and wgmma (relative L2 2e-4 to 6e-4 between the two kernels).
//
// The schedule is block_sparse_sm90.cu's:
//  - intra-warpgroup overlap: iteration i issues S(i) and then P(i-1)·V(i-1) as two wgmma batches, waits for
//    the first only (warpgroup_wait<1>) and runs tile i's masks and softmax while the P·V runs. The wait for
//    that P·V, O += O'(i-1), O *= alpha(i) and P(i)'s packing open iteration i+1 (at the loop's back edge,
//    which ptxas cannot hoist a wgmma wait across). O therefore sees O·alpha(i-1) + O'(i-1), then ·alpha(i)
//    + O'(i): the mma.sync kernel's order. The first iteration (no P·V) and the last (only the last P·V) are
//    peeled.
//  - a 3-stage K/V ring, one barrier per iteration: commit group j = {K(j), V(j-1)} (group 0 also holds Q);
//    iteration i's barrier sees group i landed and every MMA of iteration i-1 retired, then the CTA loads
//    group i+2 into the stages of K(i-1) and V(i-2) while iteration i's MMAs read K(i) and V(i-1).
//
// nvcc 13.0: 168 registers at D = 64 (189 for e4m3 P·V), 255 at D = 128 with no spills (a narrow fit: the
// f32 O and the s32 O' of the two-level accumulation are 128 registers there; in-place S conversion,
// once-computed copy offsets and key masks read after the S issue got it there), 33 / 65 KiB of shared memory.
// Work per key tile beyond the bf16 kernel's (S and O' conversions, O += O', P to bytes) keeps it near
// ALU-bound: on the H200 (16k tokens, 8 heads, 15% of tiles) it took 0.86-0.92x the bf16 kernel's time for
// int8 and 0.78-0.88x for int8-fp8pv; 0.61-0.76x the mma.sync quant kernel's (int8-fp8pv 0.46-0.72x). Hence P's bytes without F2I
// (pack_u8x4, not timed alone) and O's rescale skipped when no max moved. (An exact I2F replacement, an
// integer add into 1.5 · 2^23 then a subtraction, measured slower than I2FP.)
//
// Only the sm_90a pass compiles the body (__CUDA_ARCH_FEAT_SM90_ALL); the sm_80 PTX pass gets a trap, and
// the host dispatch (block_sparse_quant.cu) asks block_sparse_sm90_device_refusal first.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/cuda_ops.h"
#include "cuda/device_state.h"
#include "sparse_attention/kernels/sparse/cuda/block_sparse_quant_sm90.h"
#include "sparse_attention/kernels/sparse/cuda/quant_sm90_tile.cuh"
#include "sparse_attention/kernels/sparse/cuda/sm90_steps.cuh"

namespace sattn::kernels::cuda {

namespace {

using namespace cute;
using quant_sm90::kBM;
using quant_sm90::kBN;
using quant_sm90::kThreads;
using quant_sm90::copy_tile;

constexpr int kStages = 3;
[[maybe_unused]] constexpr int kQScaleRows = 32;  // rows per q scale (quant.h); unused by the sm_80 pass

template <typename T, int D, bool FP8>
__global__ void __launch_bounds__(kThreads, 1) block_sparse_quant_sm90_kernel(const QuantArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Tiles = quant_sm90::Tiles<D, FP8>;
  using VT = typename Tiles::VT;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t misalign = smem_address(smem_raw) & 1023u;
  int8_t* qs = reinterpret_cast<int8_t*>(smem_raw + (misalign == 0 ? 0 : 1024 - misalign));
  int8_t* ks = qs + Tiles::kQBytes;                                      // kStages stages of [kBN, D]
  VT* vs = reinterpret_cast<VT*>(ks + kStages * Tiles::kKBytes);        // kStages stages of [D, kBN]
  Tensor sQ = make_tensor(make_smem_ptr(qs), typename Tiles::Q{});
  auto k_stage = [&](int s) { return make_tensor(make_smem_ptr(ks + s * Tiles::kKBytes), typename Tiles::K{}); };
  auto v_stage = [&](int s) { return make_tensor(make_smem_ptr(vs + s * Tiles::kVBytes), typename Tiles::Vt{}); };

  const auto [qt, h, b] = cta_entry(a);
  const int tid = int(threadIdx.x), lane = tid % 32;
  const int q0 = qt * kBM;
  const int64_t bh = int64_t(b) * a.heads + h;
  // The output rows' base, stride and order, looked up where they are used (not held through the loop).
  auto out_head = [&]() { return static_cast<T*>(a.out) + (int64_t(b) * a.seq_len * a.heads + h) * D; };
  const int64_t out_ld = int64_t(a.heads) * D;
  auto head_perm = [&]() { return head_order(a.perm, a.head_perm, a.layout_heads, a.seq_len, h); };

  const EntryTiles tiles = entry_tiles(a, b, h, qt);
  const int num_tiles = tiles.num_tiles;
  if (num_tiles == 0) {
    zero_rows<D, kThreads>(out_head(), out_ld, head_perm(), q0, kBM, a.seq_len);
    return;
  }

  const uint8_t* qg = reinterpret_cast<const uint8_t*>(a.q8) + (bh * a.padded_len + q0) * D;
  const uint8_t* kg = reinterpret_cast<const uint8_t*>(a.k8) + bh * a.padded_len * D;
  const uint8_t* vg = a.vt8 + bh * D * a.padded_len;
  const float* k_scale = a.k_scale + bh * (a.padded_len / kBN);
  const int k_offset = quant_sm90::chunk_offset<typename Tiles::K, D>();
  const int v_offset = quant_sm90::chunk_offset<typename Tiles::Vt, kBN>();
  auto copy_k = [&](int st, int tile) {
    copy_tile<kBN, D>(ks + st * Tiles::kKBytes, k_offset, kg + int64_t(tile) * kBN * D, D);
  };
  auto copy_v = [&](int st, int tile) {
    copy_tile<D, kBN>(vs + st * Tiles::kVBytes, v_offset, vg + int64_t(tile) * kBN, a.padded_len);
  };

  // Commit group j = {K(j), V(j-1)} into stages j % 3 and (j-1) % 3; group 0 = {Q, K(0)}. The prologue
  // commits groups 0 and 1, iteration i group i+2 (empty past the end: the waits count groups).
  // tile, next, after: the tiles i, i+1, i+2 the entry visits (-1 past the end), at the start of iteration i.
  int tile = tiles.at(0), next = tiles.at(1), after = tiles.at(2);
  copy_tile<kBM, D>(qs, quant_sm90::chunk_offset<typename Tiles::Q, D>(), qg, D);
  copy_k(0, tile);
  cp_async_commit();
  copy_v(0, tile);
  if (next >= 0) copy_k(1, next);
  cp_async_commit();

  typename Tiles::MmaS mma_s;
  typename Tiles::MmaO mma_o;
  auto thr_s = mma_s.get_thread_slice(tid);
  auto thr_o = mma_o.get_thread_slice(tid);
  Tensor tSrQ = thr_s.partition_fragment_A(sQ);  // descriptors of this warpgroup's 64 rows, per k-block
  Tensor s_acc = partition_fragment_C(mma_s, Shape<Int<kBM>, Int<kBN>>{});  // s32
  Tensor pv_acc = partition_fragment_C(mma_o, Shape<Int<kBM>, Int<D>>{});   // O'(i-1), s32 or f32
  Tensor o_acc = make_tensor<float>(pv_acc.layout());
  // Tile i's S in f32, then its P, until P(i) is packed: in the S accumulators' own registers (converted in
  // place), which keeps the D = 128 kernel out of spills.
  Tensor s = recast<float>(s_acc);
  Tensor p_frag = make_tensor<typename Tiles::PT>(typename Tiles::PLayout{});  // P(i-1) while its P·V runs
  static_assert(decltype(size(s_acc))::value == 32 && decltype(size(p_frag))::value == 32, "one P byte per S value");
  static_assert(decltype(size(pv_acc))::value == D / 2, "D / 8 column groups of 4 values");
  clear(o_acc);
  clear(pv_acc);  // the first "O += O'" adds zeros
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  // This thread's two query rows inside the tile (sm90_tile.cuh's map): rows row_base and row_base + 8, both
  // inside one 32-row q scale block.
  const int row_base = (tid / 128) * 64 + ((tid / 32) % 4) * 16 + lane / 4, t = lane % 4;
  const float q_dequant =
      a.q_scale[bh * (a.padded_len / kQScaleRows) + (q0 + row_base) / kQScaleRows] * a.scale_log2;

  auto barrier = [&]() {
    cp_async_wait<1>();
    sm90::fence_generic_to_async_smem();
    __syncthreads();  // group i (K(i), V(i-1)) landed for every thread; all MMAs of iteration i-1 retired
  };
  auto issue_s = [&](int st) {  // S = Q · K(i)ᵀ
    sm90::issue_gemm(mma_s, tSrQ, thr_s.partition_fragment_B(k_stage(st)), s_acc, true);
  };
  auto issue_pv = [&](int st) {  // O' = P(i-1) · V(i-1), fresh
    sm90::issue_gemm(mma_o, p_frag, thr_o.partition_fragment_B(v_stage(st)), pv_acc, true);
  };
  // Group i+2 into the stages the barrier freed: K(i+2) into K(i-1)'s, V(i+1) into V(i-2)'s. Returns tile i+3.
  auto load_ahead = [&](int i, int k_st, int v_st) {
    if (after >= 0) copy_k(k_st, after);
    if (next >= 0) copy_v(v_st, next);
    cp_async_commit();
    return tiles.at(i + 3);
  };
  // Tile i's scores once its S retired (the caller's wait): dequantized as the mma.sync kernel does
  // (float(s32) · (q_dequant · k_scale)), masked, through the online softmax.
  auto softmax = [&](int tile_i, const uint64_t (&rows)[2], bool masked, float (&alpha)[2]) {
    warpgroup_fence_operand(s_acc);
    const float dequant = q_dequant * __ldg(k_scale + tile_i);
#pragma unroll
    for (int v = 0; v < 32; ++v) s(v) = float(s_acc(v)) * dequant;
    if (masked) sm90::apply_key_masks(s, rows, t);
    sm90::softmax_rows(s, m, l, alpha, 1.f);  // the scores are in log2 units already
  };
  // Once the P·V before it retired (the caller's wait): O += O'(i-1), O *= alpha(i), P(i) into the A fragment.
  auto accumulate_and_pack = [&](const float (&alpha)[2]) {
    warpgroup_fence_operand(pv_acc);
    warpgroup_fence_operand(o_acc);
    warpgroup_fence_operand(p_frag);
#pragma unroll
    for (int v = 0; v < D / 2; ++v) o_acc(v) += float(pv_acc(v));
    // Skipped where no row max of the warp's 16 rows moved (every alpha 1): x · 1 = x, so O is the same, and
    // past the first tiles of a long row most tiles skip D / 2 multiplies per thread.
    if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) sm90::rescale_o<D>(o_acc, alpha);
    quant_sm90::pack_p<FP8>(s, p_frag);
  };

  // Tile i's key masks are read once its S is issued: the S MMA hides their latency, and no registers hold
  // the next tile's masks across an iteration (the D = 128 kernel has none to spare).
  float alpha[2];
  {  // i = 0: S(0) alone
    barrier();
    issue_s(0);
    const int far = load_ahead(0, kStages - 1, 1);
    uint64_t rows[2];
    const bool masked = sm90::key_masks(rows, a, tiles, 0, tile, row_base);
    warpgroup_wait<0>();
    softmax(tile, rows, masked, alpha);
    tile = next, next = after, after = far;
  }
  int stage = 1;  // i % kStages: K(i)'s stage, and V(i)'s
  for (int i = 1; i < num_tiles; ++i) {
    const int prev = stage == 0 ? kStages - 1 : stage - 1;  // (i - 1) % 3 == (i + 2) % 3
    const int succ = stage == kStages - 1 ? 0 : stage + 1;  // (i + 1) % 3 == (i - 2) % 3
    warpgroup_wait<0>();  // P(i-2)·V(i-2) retired: O', O and P's registers are free
    accumulate_and_pack(alpha);  // O'(i-2), alpha(i-1), P(i-1)
    barrier();
    issue_s(stage);
    issue_pv(prev);
    const int far = load_ahead(i, prev, succ);
    uint64_t rows[2];
    const bool masked = sm90::key_masks(rows, a, tiles, i, tile, row_base);
    warpgroup_wait<1>();  // S(i) retired; P(i-1)·V(i-1) runs on during the softmax
    softmax(tile, rows, masked, alpha);
    tile = next, next = after, after = far;
    stage = succ;
  }
  {  // i = num_tiles: the last tile's P·V
    warpgroup_wait<0>();
    accumulate_and_pack(alpha);
    barrier();
    issue_pv(stage == 0 ? kStages - 1 : stage - 1);
    warpgroup_wait<0>();
    warpgroup_fence_operand(pv_acc);
#pragma unroll
    for (int v = 0; v < D / 2; ++v) o_acc(v) += float(pv_acc(v));
  }
  cp_async_wait<0>();

  quant_sm90::store_rows<T, D>(o_acc, l, a.v_scale + bh * D, a.inv_p_scale, out_head(), out_ld, head_perm(), q0,
                               a.seq_len, row_base, t);
#else
  __trap();  // not built for this device: block_sparse_sm90_device_refusal refuses it before any launch
#endif
}

template <typename T, int D>
void launch(const rt::Context& ctx, const QuantArgs& a, dim3 grid, bool fp8) {
  constexpr int smem_bytes = quant_sm90::Tiles<D, false>::smem_bytes(kStages);
  static_assert(smem_bytes == quant_sm90::Tiles<D, true>::smem_bytes(kStages), "one size for both P·V types");
  auto kernel = fp8 ? block_sparse_quant_sm90_kernel<T, D, true> : block_sparse_quant_sm90_kernel<T, D, false>;
  DITRUN_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes));
  kernel<<<grid, kThreads, smem_bytes, ctx.cuda().stream>>>(a);
}

}  // namespace

void launch_block_sparse_quant_sm90(const rt::Context& ctx, const QuantArgs& a, bool bf16, int d, bool fp8,
                                    unsigned q_tiles, unsigned heads, unsigned batch) {
  const dim3 grid{q_tiles, heads, batch};
  if (d == 64) bf16 ? launch<__nv_bfloat16, 64>(ctx, a, grid, fp8) : launch<__half, 64>(ctx, a, grid, fp8);
  else bf16 ? launch<__nv_bfloat16, 128>(ctx, a, grid, fp8) : launch<__half, 128>(ctx, a, grid, fp8);
  rt::cuda::check_launch(ctx, "block_sparse_attention_quant (sm90)");
}

}  // namespace sattn::kernels::cuda
