// The online softmax of the int8-fp8pv warp-specialized kernel (block_sparse_quant_sm90ws.cu), per consumer
// thread: its two rows of a step's S, TPS key tiles side by side (sm90_tile.cuh's wgmma accumulator
// layout), held as the floats kMagic + s. softmax_rows makes P's e4m3 codes straight from the exp2's
// argument (quant_p_codes: no exp2, no conversion) against the running max before the step's max is known;
// where lazy_in_range cannot bound the step, lazy_max_first moves the max first. The running max is lazy
// (quant_max_headroom) and moves by whole code steps (lazy_max): the CPU reference, quant_attention_cpu
// with max_headroom_log2 and p_codes, makes the same choices per row and step.
#pragma once
#include <cstdint>

#include <cute/tensor.hpp>

#include "sparse_attention/kernels/sparse/block_sparse_quant.h"
#include "sparse_attention/kernels/sparse/cuda/flash_softmax.cuh"

namespace sattn::kernels::cuda::quant_ws {

// log2(448): P·V takes P = 448·2^-kHeadroom·p = exp2(s - m - kHeadroom + kLog2PScale) as its e4m3 code.
inline constexpr float kLog2PScale = 8.807354922057604f;

// 1.5 · 2^23. An s32 score s plus this float's bits is the float kMagic + s exactly while |s| < 2^22 (at
// D = 128, |s| <= 128 · 127² < 2^21): the conversion is an integer add where I2F issues at a quarter rate,
// and kMagic · d joins the code's bias (session 16: 2% of the kernel's time).
inline constexpr float kMagic = 12582912.f;
inline constexpr uint32_t kMagicBits = 0x4B400000u;

// The lazy running max's headroom in log2 units (quant_max_headroom): P = 448·2^-2·exp2(s·d - m).
inline constexpr float kHeadroom = float(quant_max_headroom(SparseKernel::Sm90Ws));

// A row's max over the step from its per-tile maxima of the floats kMagic + s (each tile dequantized by its
// d[h]; the subtractions are exact and -inf stays), reduced over the row's four threads. log2 units.
template <int TPS>
__device__ __forceinline__ float step_row_max(const float (&mh)[TPS], const float (&d)[TPS]) {
  float mx = (mh[0] - kMagic) * d[0];
#pragma unroll
  for (int h = 1; h < TPS; ++h) mx = fmaxf(mx, (mh[h] - kMagic) * d[h]);
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));  // the four threads of a row
  return fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
}

// The lazy rule (quant_max_headroom): the running max m moves only when nothing was attended before (to the
// step's max mx) or mx exceeds m by more than kHeadroom: then by the whole code steps (1/8 in log2 units)
// that reach mx, so that the codes already made against m move by whole steps, exactly (softmax_rows).
__device__ __forceinline__ float code_steps_to(float m, float mx) { return ceilf((mx - m) * 8.f); }
__device__ __forceinline__ float lazy_max(float m, float mx) {
  return m == -INFINITY ? mx : mx > m + kHeadroom ? m + code_steps_to(m, mx) * 0.125f : m;
}

// The row's maximum of tile h's floats kMagic + s by their bits (Hopper's three-input integer max, VIMNMX3,
// half the instructions of FMNMX): kMagic + s are positive floats, whose bit patterns order as the floats
// do, and a masked score's -inf is a negative integer.
template <int TPS, class SU>
__device__ __forceinline__ float tile_row_max(const SU& xu, int r, int h) {
  constexpr int kTileCols = decltype(cute::size(xu))::value / 4 / TPS;
  int mi = int(0xff800000u);  // -inf
#pragma unroll
  for (int n = h * kTileCols; n < (h + 1) * kTileCols; ++n)
    mi = __vimax3_s32(mi, int(xu(4 * n + 2 * r)), int(xu(4 * n + 2 * r + 1)));
  return __int_as_float(mi);
}

// P's codes (quant_p_codes): e4m3's code 8e + k means 2^(e-7)·(1 + k/8), so for P = 2^y the code
// round(8y + 56 + kQuantCodeOffset) (quant.h) is Mitchell's chord between the powers of two around P, at
// most 6.2% above it (P·V's ones rows sum the same P, so each row's weights stay normalized). Each code
// comes from one saturating FFMA, t = code / 2^15 clamped to [0, 1] (below code 0 P is 0, and so are
// masked scores' -inf), and one add of kCodeMagic = 1.5·2^8, whose ulp is 2^-15: the code lands in the
// float's low bits, and quant_sm90::pack_p<true, true> gathers their low bytes. Session 24: 9-14% faster
// than an exp2 per score and e4m3 rounding to nearest (F2FP), at 4.1e-2 from the bf16 kernel instead of
// 3.7e-2.
inline constexpr float kCodeMagic = 384.f;

__device__ __forceinline__ float fma_sat(float a, float b, float c) {
  float y;
  asm("fma.rn.sat.f32 %0, %1, %2, %3;\n" : "=f"(y) : "f"(a), "f"(b), "f"(c));
  return y;
}

// The online softmax on the step's S as the floats kMagic + s (masked scores -inf), leaving P's codes in x
// (the floats kCodeMagic + code / 2^15) and l rescaled (P·V sums P on the tensor core: the kernel adds the
// step's sum to l once that P·V retired, session 21), with the codes made before the step's max is known:
// each score's max and FFMA interleave, against the running max m. Tile h of the step's TPS (S columns
// 64h..64h+63) is dequantized by d[h] (q scale · its k scale · scale · log2 e) and P's scale folded into
// the bias, so each score costs one FFMA.SAT and one FADD; the row max is taken per tile on the floats and
// scaled once. m in log2 units. Where the step's max exceeds m by more than kHeadroom, m moves by whole
// code steps (lazy_max), and that row's codes move by the same steps, exactly (rare after a row's first
// steps). Where lazy_in_range cannot bound the step, lazy_max_first moves m before this runs.
// Session 19: 4-5% faster dense than taking the max first; session 20: masked steps too (GNA 1-3%).
template <int TPS, class S, class SU>
__device__ __forceinline__ void softmax_rows(S& x, SU& xu, const float (&d)[TPS], float (&m)[2], float (&l)[2],
                                             float (&alpha)[2]) {
  constexpr int kSCols = decltype(cute::size(x))::value / 4;  // n8 column groups: kSCols / TPS per tile
  constexpr int kTileCols = kSCols / TPS;
  constexpr float kT = 1.f / 4096.f;  // 8 / 2^15: log2 units to t
  float mx[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    // m = -inf: nothing attended yet nor in this step (lazy_max_first ran), so every code is 0.
    const float ref = m[r] == -INFINITY ? 0.f : m[r];
    float dt[TPS], bias[TPS], mh[TPS];
#pragma unroll
    for (int h = 0; h < TPS; ++h) {
      // t = (8·(s·d - ref - kHeadroom + kLog2PScale) + 56 + kQuantCodeOffset) / 2^15 = x·dt - bias; the bias
      // is rounded once, within 2^-24·kMagic·dt (under one unit of s·dt).
      dt[h] = d[h] * kT;
      bias[h] = fmaf(kMagic, dt[h], (ref + kHeadroom - kLog2PScale) * kT - (56.f + kQuantCodeOffset) / 32768.f);
    }
#pragma unroll
    for (int h = 0; h < TPS; ++h) mh[h] = tile_row_max<TPS>(xu, r, h);
#pragma unroll
    for (int n = 0; n < kSCols; ++n)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int v = 4 * n + 2 * r + c, h = n / kTileCols;
        x(v) = __fadd_rn(fma_sat(x(v), dt[h], -bias[h]), kCodeMagic);
      }
    mx[r] = step_row_max(mh, d);
  }
  alpha[0] = alpha[1] = 1.f;
  if (__any_sync(0xffffffffu, mx[0] > m[0] + kHeadroom || mx[1] > m[1] + kHeadroom)) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      // lazy_max, with m finite here: after lazy_max_first no row's max moves, so this runs only where
      // lazy_in_range held, which needs every row's m finite. A code moves by whole steps: t - shift is
      // exact, and so is the add.
      const float steps = mx[r] > m[r] + kHeadroom ? code_steps_to(m[r], mx[r]) : 0.f;
      alpha[r] = flash::fast_exp2(steps * -0.125f);
      const float shift = steps * (1.f / 32768.f);
      m[r] += steps * 0.125f;
#pragma unroll
      for (int n = 0; n < kSCols; ++n)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int v = 4 * n + 2 * r + c;
          x(v) = __fadd_rn(fma_sat(__fsub_rn(x(v), kCodeMagic), 1.f, -shift), kCodeMagic);
        }
    }
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) l[r] *= alpha[r];
}

// The lazy rule's move of m before softmax_rows, for steps lazy_in_range cannot bound (a row's first
// steps, or a jump in the scores): afterwards every score is within m + kHeadroom, so softmax_rows's codes
// stay at most 126 (448) and it moves m no further. l follows; alpha returns O's factor exp2(m_old - m_new).
template <int TPS, class SU>
__device__ __forceinline__ void lazy_max_first(const SU& xu, const float (&d)[TPS], float (&m)[2], float (&l)[2],
                                               float (&alpha)[2]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float mh[TPS];
#pragma unroll
    for (int h = 0; h < TPS; ++h) mh[h] = tile_row_max<TPS>(xu, r, h);
    const float m_new = lazy_max(m[r], step_row_max(mh, d));
    alpha[r] = flash::fast_exp2(m[r] - (m_new == -INFINITY ? 0.f : m_new));  // m = -inf: l is 0, O is 0
    m[r] = m_new;
    l[r] *= alpha[r];
  }
}

// Whether softmax_rows may run on the step without lazy_max_first (warp-uniform): every row's code
// 8·(s·d - m - kHeadroom + log2 448) + 56 must stay below t's saturation at 2^15 however the step's scores
// fall, so that a move shifts codes that were not clamped. By Cauchy-Schwarz a row's |s| <= ‖q8 row‖₂ ·
// ‖k8 key‖₂ <= qn[r] · kn[e] (kn: the tile's largest key norm, from the pre-pass), so s·d <= qn[r] ·
// max_e(kn[e] · d[e]); a bound 100 over m keeps every code under 8 · 107 + 56 (it was set for the exp2s
// this softmax had before session 24, under 2^107). Rows without a running max (m = -inf) fail it too.
// For N(0, 1)-like q and k the bound is about 19σ (log2 units) for logits of standard deviation σ, so the
// check holds up to σ ≈ 7 (session 19).
template <int TPS>
__device__ __forceinline__ bool lazy_in_range(const float (&qn)[2], const float (&kn)[TPS], const float (&d)[TPS],
                                              const float (&m)[2]) {
  float dn = kn[0] * d[0];
#pragma unroll
  for (int e = 1; e < TPS; ++e) dn = fmaxf(dn, kn[e] * d[e]);
  constexpr float kRange = 100.f;
  return __all_sync(0xffffffffu, qn[0] * dn - m[0] <= kRange && qn[1] * dn - m[1] <= kRange);
}

// qn of lazy_in_range, ‖q8 row‖₂, for the thread's rows row_base and row_base + 8 of the Q tile (D bytes a
// row): each of a row's four threads sums the squares over a quarter of it. The swizzle only permutes
// 16-byte chunks within a row, which the sum does not see.
template <int D>
__device__ __forceinline__ void q_row_norms(float (&qn)[2], const uint8_t* qs, int row_base, int t) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int4* src = reinterpret_cast<const int4*>(qs + (row_base + 8 * r) * D + t * (D / 4));
    int sq = 0;
#pragma unroll
    for (int j = 0; j < D / 64; ++j) {
      const int4 w = src[j];
      sq = __dp4a(w.x, w.x, sq), sq = __dp4a(w.y, w.y, sq), sq = __dp4a(w.z, w.z, sq), sq = __dp4a(w.w, w.w, sq);
    }
    sq += __shfl_xor_sync(0xffffffffu, sq, 1);
    sq += __shfl_xor_sync(0xffffffffu, sq, 2);
    qn[r] = sqrtf(float(sq));  // exact below 2^24
  }
}

}  // namespace sattn::kernels::cuda::quant_ws
