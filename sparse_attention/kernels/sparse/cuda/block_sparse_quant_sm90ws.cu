// The quantized block-sparse kernel for quant=int8-fp8pv on Hopper, in block_sparse_sm90ws.cu's design.
// Contract and operands of block_sparse_quant_sm90.cu (the pre-pass's q8, k8, vt8 in layout order, padded
// to whole query tiles, with their scales); schedule of sm90ws:
//  - a step is TPS key tiles side by side, kKN = 64·TPS keys: TPS = 3 at D = 128 and 2 at D = 64
//    (quant_tiles_per_step). Three tiles per step were 2-7% faster than two at D = 128 (session 17: fewer
//    steps for the per-step work, the row max's shuffles, O's rescale, the waits and the turn); at D = 64
//    they spilled 120 bytes in the consumers.
//  - warpgroup 0 (setmaxnreg 24) only copies, and only its thread 0 works: Q's 128 rows, then per step tiles
//    TPS·j .. TPS·j + TPS - 1 (K [kKN keys, D] and Vᵀ [D, kKN keys]) into a ring of kStages stages. The
//    pre-pass wrote layout order, so every tile is one TMA box (tma.cuh), with no perm look-ups. TMA
//    replaced 128 threads' cp.async chunks in session 18: 2.5-6% faster in timed runs, but only about 1%
//    fewer cycles under ncu's fixed clock, so most of the gain is likely the clock the H200's power limit
//    allows once three producer warps stop issuing;
//  - warpgroups 1 and 2 (setmaxnreg 240), 64 query rows each, ping-pong as in sm90ws:
//      S = Q·Kᵀ   wgmma m64n{kKN}k32 s8·s8 -> s32 (exact), converted in place to the floats kMagic + s by an
//                 integer add;
//      masks (sm90_steps.cuh), then softmax_rows (quant_ws_softmax.cuh): the f32 online softmax with
//                 the dequantization q_scale(32 rows)·k_scale(tile)·scale·log2(e) (each tile of a step
//                 has its own k scale) and P's scale folded into each score's FFMA; it makes P's e4m3
//                 codes from log2 P without exp2 (quant_p_codes; session 24: 9-14% faster); its running
//                 max is lazy (it moves only when a step's max exceeds it by more than 2 in log2 units, a
//                 factor 4 in p; P = 448/4·p at the max), so every code is made against the max before
//                 the step, interleaved with the max (session 19: 4-5% faster dense), except where
//                 lazy_in_range cannot bound the step: then lazy_max_first moves the max first;
//      O += P·V   wgmma m64n(D+8)k32 e4m3·e4m3 -> f32 straight into O (P from registers, Vᵀ K-major),
//                 O rescaled by alpha first, as the bf16 kernel does: no second accumulator (S kKN/2 + P
//                 kKN/8 + O (D+8)/2 registers: 96 + 24 + 68 at D = 128). Vᵀ's 8 rows past its D channels
//                 are ones, so columns D..D+7 of O sum the step's P (the row sum l, see Numerics);
//  - epilogue: o · v_scale(channel) / (row sum of P), rows scattered through perm (quant_sm90::store_rows).
// Numerics (docs/performance.md, sessions 14 to 24):
//  - P is quantized against the running max of the step's TPS tiles; the mma.sync and sm90 kernels update
//    it per tile. The two round P differently: 0.8-1.2% apart (relative L2) at the same distance to exact
//    attention. So the CPU reference is quant_attention_cpu with tiles_per_step = TPS (quant_tiles_per_step).
//  - The tensor core adds each step's P·V into O·alpha directly; the other kernels sum each tile in a fresh
//    accumulator first. Flushing O into an f32 copy every 1 to 8 steps left the distance to the reference
//    unchanged to 1e-5 on the GPU tests' problems, so there is no second accumulator.
//  - P's code is round(8·(s·d - m - 2 + log2 448) + 56 + kQuantCodeOffset) clamped to [0, 126]: the
//    e4m3 value of Mitchell's chord through the powers of two around P = 448/4·p, 1 to 1.062 times P before
//    the rounding (quant.h). The reference's p_codes (quant_p_codes) takes the same codes except at rare
//    rounding ties: s·dt is one FFMA rounding, and the bias (kMagic·d + m + 2 - log2 448)/4096 is rounded
//    once, within 2^-24·kMagic·dt (under one unit of s·dt). Against the bf16 kernel 4.1e-2 relative L2,
//    where exp2 and P rounded to nearest were 3.7e-2; the embedded model's images moved by under 0.05 dB.
//  - The lazy max is quant_attention_cpu's max_headroom_log2 = 2 (quant_max_headroom), moved by whole code
//    steps: the reference makes the same choice per row and step, which path ran does not matter.
//  - l sums P on the tensor core, one step at a time: after each P·V retires, each thread adds its rows'
//    sums (columns D..D+7, which hold the rows' whole sums) to l and zeroes them, so no FP8 accumulation
//    carries more than one step's sum (session 16 carried the whole row's and lost long rows: 0.43 relative
//    L2 at 16,896 keys). l is then the sum of the e4m3 P that P·V multiplied, the reference's
//    sum_quantized_p (quant_sum_quantized_p). Session 21: 3-7% faster than the softmax's 96 FADDs a step
//    (Flux 2048² dense −6%, GNA 1x40x40 −7%, Flux 4096² dense −5%), the distance to the bf16 kernel unchanged.
// quant=int8 (u8 P · s8 V into s32) needs the exact two-level sum and stays on block_sparse_quant_sm90.cu.
// P·V at N = D + 8 (m64n136k32 at D = 128) is one of CuTe's extended wgmma shapes.
#define CUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED 1
#include <cuda_runtime_api.h>

#include <cstdint>
#include <type_traits>
#include <utility>

#include "cuda/common.cuh"
#include "cuda/cuda_ops.h"
#include "cuda/device_state.h"
#include "sparse_attention/kernels/sparse/block_sparse_quant.h"
#include "sparse_attention/kernels/sparse/cuda/block_sparse_quant_sm90.h"
#include "sparse_attention/kernels/sparse/cuda/quant_sm90_tile.cuh"
#include "sparse_attention/kernels/sparse/cuda/quant_ws_softmax.cuh"
#include "sparse_attention/kernels/sparse/cuda/sm90_steps.cuh"
#include "sparse_attention/kernels/sparse/cuda/tma.cuh"
#include "sparse_attention/kernels/sparse/cuda/ws_sync.cuh"

namespace sattn::kernels::cuda {

namespace quant_ws {

using namespace cute;
using namespace ws;
using sm90::kBM;
using sm90::kBN;

inline constexpr int kThreads = 384, kProducerThreads = 128, kConsumerWarps = 8;
// The producer needs few registers (no perm look-ups), and the consumers use what it leaves: at 224 ptxas
// spilled 48 bytes into their loop, at 232 it did not, and 240 was 5% faster still (session 15, call 2).
inline constexpr int kProducerRegs = 24, kConsumerRegs = 240;
static_assert(128 * kProducerRegs + 256 * kConsumerRegs == 64512, "the launch's register pool");
inline constexpr int kBarTurn = 1;
inline constexpr int kStages = 4;
inline constexpr int kQScaleRows = 32;

// TPS layout tiles side by side make a step of kKN keys.
// Vᵀ has 8 rows of ones after its D channels (e4m3 1.0, written once at the start), so that P·V at N = D + 8
// also sums each row's P; the TMA loads only the D channels.
template <int D, int TPS>
struct Tiles {
  static constexpr int kKN = TPS * kBN;
  static constexpr int kVRows = D + 8;  // Vᵀ rows: D channels, 8 rows of ones
  using RowAtom = std::conditional_t<D == 128, GMMA::Layout_K_SW128_Atom<int8_t>, GMMA::Layout_K_SW64_Atom<int8_t>>;
  using Q = decltype(tile_to_shape(RowAtom{}, Shape<Int<kBM>, Int<D>>{}));
  using K = decltype(tile_to_shape(RowAtom{}, Shape<Int<kKN>, Int<D>>{}));
  // Vᵀ [D, kKN keys] in 64-byte swizzle atoms, one column of them [D, 64] per tile: tile e at e·D·64, one
  // TMA box each.
  using Vt = decltype(tile_to_shape(GMMA::Layout_K_SW64_Atom<float_e4m3_t>{}, Shape<Int<kVRows>, Int<kKN>>{}));
  using OpS = decltype(
      GMMA::ss_op_selector<int8_t, int8_t, int32_t, Shape<_64, Int<kKN>, Int<D>>, GMMA::Major::K, GMMA::Major::K>());
  using MmaS = decltype(make_tiled_mma(OpS{}, Layout<Shape<_2, _1, _1>>{}));
  using MmaO = decltype(make_tiled_mma(
      GMMA::rs_op_selector<float_e4m3_t, float_e4m3_t, float, Shape<_64, Int<kVRows>, Int<kKN>>, GMMA::Major::K,
                           GMMA::Major::K>(),
      Layout<Shape<_2, _1, _1>>{}));
  // P as MmaO's A operand: four registers per k-block of 32 keys (quant_sm90_tile.cuh's PLayout), four k-blocks.
  using PLayout = Layout<Shape<Shape<_4, _2, _2>, _1, Int<kKN / 32>>>;
  static constexpr int kQBytes = kBM * D, kKBytes = kKN * D, kVBytes = kVRows * kKN, kVLoadBytes = D * kKN;
  static constexpr int kBarriers = 1 + 4 * kStages;
  // Tiles, the barriers, then each stage's TPS k scales and TPS k norms (the producer stores them with the
  // stage, so that the consumers hold no pointer into the layout's lists: their registers are full).
  static constexpr int smem_bytes() {
    return kQBytes + kStages * (kKBytes + kVBytes) + 1024 + 8 * kBarriers + 2 * 4 * TPS * kStages;
  }
};

// One SS wgmma of Op on descriptors a and b into the accumulators c (32-bit, all of them, in order);
// zero_first starts from zero. The caller arrives and commits.
template <class Op, class C, size_t... I>
__device__ __forceinline__ void wgmma_ss_impl(uint64_t a, uint64_t b, C& c, bool zero_first, std::index_sequence<I...>) {
  Op::fma(a, b, c(I)..., zero_first ? GMMA::ScaleOut::Zero : GMMA::ScaleOut::One);
}
template <class Op, class C>
__device__ __forceinline__ void wgmma_ss(uint64_t a, uint64_t b, C& c, bool zero_first) {
  wgmma_ss_impl<Op>(a, b, c, zero_first, std::make_index_sequence<decltype(size(c))::value>{});
}

// The masks of step `step` (slots TPS·step .. TPS·step + TPS - 1): as block_sparse_sm90ws.cu's step_masks
// without packed keys. Returns whether any key can be masked.
template <int TPS>
__device__ __forceinline__ bool step_masks(uint64_t (&rows)[2 * TPS], const QuantArgs& a, const EntryTiles& tiles,
                                           int step, int ragged, int row_base) {
  const int i0 = TPS * step;
#pragma unroll
  for (int w = 0; w < 2 * TPS; ++w) rows[w] = ~uint64_t(0);
  if (i0 + TPS <= tiles.num_full && (ragged < i0 || ragged >= i0 + TPS)) return false;
#pragma unroll
  for (int e = 0; e < TPS; ++e) {
    const int i = i0 + e;
    if (i >= tiles.num_tiles) {
      rows[2 * e] = rows[2 * e + 1] = 0;
    } else if (i >= tiles.num_full) {
      const uint64_t* mask = a.partial_masks + int64_t(tiles.partial_begin + i - tiles.num_full) * kBM + row_base;
      rows[2 * e] = __ldg(mask), rows[2 * e + 1] = __ldg(mask + 8);
    } else if (i == ragged) {
      rows[2 * e] = rows[2 * e + 1] = (uint64_t(1) << (a.seq_len % kBN)) - 1;
    }
  }
  return true;
}

__device__ __forceinline__ int ragged_position(const QuantArgs& a, const EntryTiles& tiles) {
  if (a.seq_len % kBN == 0) return -1;
  const int last = (a.seq_len - 1) / kBN;
  if (tiles.num_full > 0 && __ldg(tiles.full + tiles.num_full - 1) == last) return tiles.num_full - 1;
  if (tiles.num_tiles > tiles.num_full && __ldg(tiles.partial + tiles.num_tiles - tiles.num_full - 1) == last)
    return tiles.num_tiles - 1;
  return -1;
}

}  // namespace quant_ws

namespace {

using namespace cute;
using namespace quant_ws;

// The TMA descriptors of q8 ([BH·padded_len, D] in boxes of 128 rows), k8 (boxes of 64 rows) and vt8
// ([BH·D, padded_len] in boxes of D rows × 64 keys).
struct TmaMaps {
  CUtensorMap q, k, vt;
};

template <typename T, int D, int TPS>
__global__ void __launch_bounds__(kThreads, 1)
    block_sparse_quant_sm90ws_kernel(const QuantArgs a, const __grid_constant__ TmaMaps maps) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using TL = Tiles<D, TPS>;
  constexpr int kKN = TL::kKN;
  constexpr int S = kStages;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t misalign = smem_address(smem_raw) & 1023u;
  uint8_t* qs = smem_raw + (misalign == 0 ? 0 : 1024 - misalign);
  uint8_t* ks = qs + TL::kQBytes;          // S stages of [kKN, D]
  uint8_t* vs = ks + S * TL::kKBytes;      // S stages of [D, kKN]
  uint64_t* q_full = reinterpret_cast<uint64_t*>(vs + S * TL::kVBytes);
  uint64_t* k_full = q_full + 1;
  uint64_t* v_full = k_full + S;
  uint64_t* k_empty = v_full + S;
  uint64_t* v_empty = k_empty + S;
  float* k_scales = reinterpret_cast<float*>(v_empty + S);  // [S][TPS]: the k scales of each stage's tiles
  float* k_norms = k_scales + S * TPS;                        // [S][TPS]: their k norms (k_norm)
  Tensor sQ = make_tensor(make_smem_ptr(reinterpret_cast<int8_t*>(qs)), typename TL::Q{});
  auto k_stage = [&](int s) {
    return make_tensor(make_smem_ptr(reinterpret_cast<int8_t*>(ks + s * TL::kKBytes)), typename TL::K{});
  };
  auto v_stage = [&](int s) {
    return make_tensor(make_smem_ptr(reinterpret_cast<float_e4m3_t*>(vs + s * TL::kVBytes)), typename TL::Vt{});
  };

  const auto [qt, h, b] = cta_entry(a);
  const int tid = int(threadIdx.x), lane = tid % 32;
  const int q0 = qt * kBM;
  const int64_t bh = int64_t(b) * a.heads + h;
  const EntryTiles tiles = entry_tiles(a, b, h, qt);
  const int num_steps = (tiles.num_tiles + TPS - 1) / TPS;
  if (tiles.num_tiles == 0) {  // CTA-uniform: nobody has touched a barrier yet
    zero_rows<D, kThreads>(static_cast<T*>(a.out) + (int64_t(b) * a.seq_len * a.heads + h) * D, int64_t(a.heads) * D,
                           head_order(a.perm, a.head_perm, a.layout_heads, a.seq_len, h), q0, kBM, a.seq_len);
    return;
  }
  if (tid == 0) {
    mbar_init(q_full, 1);  // the producer's one thread, and the TMA's bytes
    for (int s = 0; s < S; ++s) {
      mbar_init(k_full + s, 1), mbar_init(v_full + s, 1);
      mbar_init(k_empty + s, kConsumerWarps), mbar_init(v_empty + s, kConsumerWarps);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  {
    // Rows D..D+7 of every Vᵀ column [D + 8, 64] of every stage: e4m3 1.0 (0x38; the swizzle only permutes
    // them among themselves). The TMA boxes cover rows 0..D-1 and never touch them. Made visible to the
    // wgmma's async proxy before the barrier.
    constexpr int kChunks = S * TPS * 8 * 64 / 16;
    for (int c = tid; c < kChunks; c += kThreads) {
      const int col = c / 32, within = c % 32;  // 32 chunks of 16 bytes per column's 8 rows
      *reinterpret_cast<uint4*>(vs + col * TL::kVRows * kBN + D * kBN + 16 * within) =
          make_uint4(0x38383838u, 0x38383838u, 0x38383838u, 0x38383838u);
    }
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  }
  __syncthreads();

  if (tid < kProducerThreads) {
    // ---- Producer: step j's tiles into stage j % S once step j - S released it (sm90ws's protocol).
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegs));
    // An empty slot past the entry's last tile gets the step's first tile again: its keys are masked (p = 0),
    // and V must hold finite values, as 0 · NaN is NaN.
    if (tid != 0) return;
    const int q_row = int(bh * a.padded_len + q0), k_row = int(bh * a.padded_len), v_row = int(bh * D);
    tma::expect_bytes(q_full, TL::kQBytes);
    tma::load_2d(qs, maps.q, 0, q_row, q_full);
    tma::arrive(q_full);
    const float* k_scale = a.k_scale + bh * (a.padded_len / kBN);
    const float* k_norm = a.k_norm + bh * (a.padded_len / kBN);
    int s = 0, use = 0;
    for (int j = 0; j < num_steps; ++j) {
      int tj[TPS];
#pragma unroll
      for (int e = 0; e < TPS; ++e) tj[e] = tiles.at(TPS * j + e);  // -1 past the entry's last tile
#pragma unroll
      for (int e = 1; e < TPS; ++e) tj[e] = tj[e] >= 0 ? tj[e] : tj[0];
      if (use > 0) mbar_wait(k_empty + s, (use - 1) & 1);
      tma::expect_bytes(k_full + s, TL::kKBytes);
#pragma unroll
      for (int e = 0; e < TPS; ++e)
        tma::load_2d(ks + s * TL::kKBytes + e * kBN * D, maps.k, 0, k_row + tj[e] * kBN, k_full + s);
#pragma unroll
      for (int e = 0; e < TPS; ++e) {
        k_scales[TPS * s + e] = __ldg(k_scale + tj[e]);
        k_norms[TPS * s + e] = __ldg(k_norm + tj[e]);
      }
      tma::arrive(k_full + s);  // releases the scales' stores
      if (use > 0) mbar_wait(v_empty + s, (use - 1) & 1);
      tma::expect_bytes(v_full + s, TL::kVLoadBytes);
#pragma unroll
      for (int e = 0; e < TPS; ++e)
        tma::load_2d(vs + s * TL::kVBytes + e * TL::kVRows * kBN, maps.vt, tj[e] * kBN, v_row, v_full + s);
      tma::arrive(v_full + s);
      if (++s == S) s = 0, ++use;
    }
    return;
  }

  // ---- Consumers: warpgroup cw owns query rows 64cw..64cw+63.
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegs));
  const int ctid = tid - kProducerThreads, cw = ctid / 128;
  typename TL::MmaS mma_s;
  typename TL::MmaO mma_o;
  auto thr_s = mma_s.get_thread_slice(ctid);
  auto thr_o = mma_o.get_thread_slice(ctid);
  Tensor tSrQ = thr_s.partition_fragment_A(sQ);
  Tensor s_acc = partition_fragment_C(mma_s, Shape<Int<kBM>, Int<kKN>>{});  // s32
  Tensor s = recast<float>(s_acc);                                          // the same registers as f32
  Tensor o_acc = partition_fragment_C(mma_o, Shape<Int<kBM>, Int<TL::kVRows>>{});  // f32
  // o_acc(kSum + 2r) and o_acc(kSum + 2r + 1): row r's two columns of the ones (column group D / 8), each
  // holding the row's whole sum of the step's P.
  constexpr int kSum = 4 * (D / 8);
  Tensor p_frag = make_tensor<float_e4m3_t>(typename TL::PLayout{});
  static_assert(decltype(size(s_acc))::value == kKN / 2 && decltype(size(p_frag))::value == kKN / 2,
                "one P byte per S value");
  clear(o_acc);
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}, qn[2];
  const int row_base = cw * 64 + ((ctid / 32) % 4) * 16 + lane / 4, t = lane % 4;
  const int ragged = ragged_position(a, tiles);
  const float q_dequant = a.q_scale[bh * (a.padded_len / kQScaleRows) + (q0 + row_base) / kQScaleRows] * a.scale_log2;

  int k_st = 0, k_par = 0, v_st = 0, v_par = 0, old_st = 0;
  auto take_turn = [&]() { bar_sync(kBarTurn + cw, 256); };
  auto give_turn = [&](bool last) { bar_arrive_if(kBarTurn + (1 - cw), 256, !(last && cw == 1)); };
  // Q's descriptor of k-block 0, broadcast from lane 0 so that ptxas can keep it warp-uniform; each
  // k-block's is K's k-block offset added to its low word: Q and a K stage stack the same swizzle atom, one
  // atom per row of D bytes, so their offsets along D agree whatever their row counts. CuTe's four
  // per-thread descriptors spilled at D = 128.
  static_assert(decltype(size<1>(typename TL::RowAtom{}))::value == D, "a row of Q or K is one swizzle atom");
  const uint64_t q_desc0 = uint64_t(tSrQ(0, 0, 0));
  const uint32_t q_lo = __shfl_sync(0xffffffffu, uint32_t(q_desc0), 0),
                 q_hi = __shfl_sync(0xffffffffu, uint32_t(q_desc0 >> 32), 0);
  Tensor s_u32 = recast<uint32_t>(s_acc);  // the s32 accumulators as the MMA's 32-bit operands
  auto issue_s = [&](int st) {
    Tensor k_desc = thr_s.partition_fragment_B(k_stage(st));
    warpgroup_fence_operand(s_acc);
    warpgroup_arrive();
#pragma unroll
    for (int kb = 0; kb < size<2>(k_desc); ++kb) {
      const uint64_t kd = uint64_t(k_desc(0, 0, kb));
      const uint32_t off = uint32_t(kd) - uint32_t(uint64_t(k_desc(0, 0, 0)));
      wgmma_ss<typename TL::OpS>((uint64_t(q_hi) << 32) | (q_lo + off), kd, s_u32, kb == 0);
    }
    warpgroup_commit_batch();
  };
  auto issue_pv = [&](int st) {
    sm90::issue_gemm(mma_o, p_frag, thr_o.partition_fragment_B(v_stage(st)), o_acc, false);
  };
  // Step i's scores once its S retired: dequantized per key tile (each with its own scale ks[e] and key
  // norm kn[e], read from the stage before its release), masked, through the online softmax (in log2 units).
  auto softmax = [&](const float (&ks)[TPS], const float (&kn)[TPS], const uint64_t (&rows)[2 * TPS], bool masked,
                     float (&alpha)[2]) {
    warpgroup_fence_operand(s_acc);
    float d[TPS];
#pragma unroll
    for (int e = 0; e < TPS; ++e) d[e] = q_dequant * ks[e];
#pragma unroll
    for (int v = 0; v < kKN / 2; ++v) s_u32(v) += kMagicBits;  // s(v) = kMagic + s_acc(v)
    if (masked) sm90::apply_key_masks(s, rows, t);
    float first[2] = {1.f, 1.f};
    if (!lazy_in_range(qn, kn, d, m)) lazy_max_first<TPS>(s_u32, d, m, l, first);
    softmax_rows<TPS>(s, s_u32, d, m, l, alpha);
    alpha[0] *= first[0], alpha[1] *= first[1];
  };
  auto rescale_and_pack = [&](const float (&alpha)[2]) {
    warpgroup_fence_operand(o_acc);
    warpgroup_fence_operand(p_frag);
    sm90::rescale_o<D>(o_acc, alpha);
    // The P·V that just retired summed its step's P into columns D..D+7 (each thread's two of them hold its
    // rows' whole sums): l = l·alpha + sum·alpha, l's own alpha having come with the softmax. Then zero them
    // for the next P·V, so that the FP8 accumulation never carries more than one step's sum. In one asm
    // statement that reads and writes the accumulators in place: as C++ (a read into l and a store of 0, or
    // even the read alone) ptxas gave the wgmma accumulators other registers between steps and serialized
    // every wgmma (C7511), spilling up to 1.3 KB.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      asm volatile("{\n fma.rn.f32 %0, %1, %3, %0;\n mov.b32 %1, 0;\n mov.b32 %2, 0;\n}\n"
                   : "+f"(l[r]), "+f"(o_acc(kSum + 2 * r)), "+f"(o_acc(kSum + 2 * r + 1))
                   : "f"(alpha[r]));
    }
    quant_sm90::pack_p<true, true>(s, p_frag);  // the codes softmax_rows left
  };
  // The k scales and norms of stage st into registers before the stage is released: lane 0 reads them (its
  // arrive orders its own loads before the release) and hands them to the other lanes.
  auto stage_scales = [&](float (&ks)[TPS], float (&kn)[TPS], int st) {
#pragma unroll
    for (int e = 0; e < TPS; ++e) ks[e] = kn[e] = 0.f;
    if (lane == 0)
#pragma unroll
      for (int e = 0; e < TPS; ++e) ks[e] = k_scales[TPS * st + e], kn[e] = k_norms[TPS * st + e];
#pragma unroll
    for (int e = 0; e < TPS; ++e) {
      ks[e] = __shfl_sync(0xffffffffu, ks[e], 0);
      kn[e] = __shfl_sync(0xffffffffu, kn[e], 0);
    }
  };

  if (cw == 1) bar_arrive_if(kBarTurn, 256, true);  // consumer 0 takes the first turn
  // A step's masks are read right after its S MMA is issued, as block_sparse_quant_sm90.cu does. Loading them
  // a step ahead, and applying them as predicated FP32 multiplies instead of SELs, gained nothing
  // (docs/performance.md, session 26).
  float alpha[2];
  {  // i = 0: S(0) alone
    mbar_wait(q_full, 0);
    q_row_norms<D>(qn, qs, row_base, t);
    mbar_wait(k_full + 0, 0);
    take_turn();
    issue_s(0);
    give_turn(false);
    uint64_t rows[2 * TPS];
    const bool masked = step_masks<TPS>(rows, a, tiles, 0, ragged, row_base);
    warpgroup_wait<0>();
    float ks[TPS], kn[TPS];
    stage_scales(ks, kn, 0);
    mbar_arrive_warp(k_empty + 0, lane);
    softmax(ks, kn, rows, masked, alpha);
  }
  for (int i = 1; i < num_steps; ++i) {
    old_st = v_st, v_st = k_st, v_par = k_par;
    if (++k_st == S) k_st = 0, k_par ^= 1;
    warpgroup_wait<0>();  // P(i-2)·V(i-2) retired
    if (i >= 2) mbar_arrive_warp(v_empty + old_st, lane);
    rescale_and_pack(alpha);  // step i-1's
    mbar_wait(k_full + k_st, k_par);
    mbar_wait(v_full + v_st, v_par);
    take_turn();
    issue_s(k_st);
    issue_pv(v_st);
    give_turn(false);
    uint64_t rows[2 * TPS];
    const bool masked = step_masks<TPS>(rows, a, tiles, i, ragged, row_base);
    warpgroup_wait<1>();  // S(i) retired; P(i-1)·V(i-1) runs on during the softmax
    float ks[TPS], kn[TPS];
    stage_scales(ks, kn, k_st);
    mbar_arrive_warp(k_empty + k_st, lane);
    softmax(ks, kn, rows, masked, alpha);
  }
  {  // the last step's P·V
    const int last_st = k_st, last_par = k_par;
    warpgroup_wait<0>();
    if (num_steps >= 2) mbar_arrive_warp(v_empty + v_st, lane);
    rescale_and_pack(alpha);
    mbar_wait(v_full + last_st, last_par);
    take_turn();
    issue_pv(last_st);
    give_turn(true);
    warpgroup_wait<0>();
    warpgroup_fence_operand(o_acc);
    mbar_arrive_warp(v_empty + last_st, lane);
#pragma unroll
    for (int r = 0; r < 2; ++r) l[r] += o_acc(kSum + 2 * r);  // the last step's sums
  }
  // l holds each row's whole sum of P at P's scale: no shuffles and no inv_p_scale.
  quant_sm90::store_rows<T, D, true>(o_acc, l, a.v_scale + bh * D, 1.f,
                                     static_cast<T*>(a.out) + (int64_t(b) * a.seq_len * a.heads + h) * D,
                                     int64_t(a.heads) * D,
                                     head_order(a.perm, a.head_perm, a.layout_heads, a.seq_len, h), q0, a.seq_len,
                                     row_base, t);
#else
  __trap();  // not built for this device: block_sparse_sm90_device_refusal refuses it before any launch
#endif
}

template <typename T, int D>
void launch(const rt::Context& ctx, const QuantArgs& a, dim3 grid) {
  constexpr int kTps = quant_tiles_per_step(SparseKernel::Sm90Ws, D);
  constexpr int smem_bytes = Tiles<D, kTps>::smem_bytes();
  static_assert(smem_bytes <= 227 * 1024, "Hopper's shared memory per block");
  // TMA coordinates are signed 32-bit. 2^31 rows of q8 alone would be 128 GiB at D = 64.
  const uint64_t rows = uint64_t(grid.z) * uint64_t(a.heads) * uint64_t(a.padded_len);
  CHECK(rows < (uint64_t(1) << 31), "block_sparse_attention_quant (sm90ws): ", rows, " rows of q8, expected < 2^31");
  const auto encode = tma::encode_tiled();
  const TmaMaps maps{tma::make_map_2d(encode, a.q8, D, rows, D, kBM, D, "q8"),
                     tma::make_map_2d(encode, a.k8, D, rows, D, kBN, D, "k8"),
                     tma::make_map_2d(encode, a.vt8, uint64_t(a.padded_len), rows / a.padded_len * D, kBN, D, 64, "vt8")};
  DITRUN_CUDA_CHECK(cudaFuncSetAttribute(block_sparse_quant_sm90ws_kernel<T, D, kTps>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes));
  block_sparse_quant_sm90ws_kernel<T, D, kTps><<<grid, kThreads, smem_bytes, ctx.cuda().stream>>>(a, maps);
}

}  // namespace

void launch_block_sparse_quant_sm90ws(const rt::Context& ctx, const QuantArgs& a, bool bf16, int d, unsigned q_tiles,
                                      unsigned heads, unsigned batch) {
  const dim3 grid{q_tiles, heads, batch};
  if (d == 64) bf16 ? launch<__nv_bfloat16, 64>(ctx, a, grid) : launch<__half, 64>(ctx, a, grid);
  else bf16 ? launch<__nv_bfloat16, 128>(ctx, a, grid) : launch<__half, 128>(ctx, a, grid);
  rt::cuda::check_launch(ctx, "block_sparse_attention_quant (sm90ws)");
}

}  // namespace sattn::kernels::cuda
