// The online softmax of the int8-fp8pv warp-specialized kernel (block_sparse_quant_sm90ws.cu), per consumer
// thread: its two rows of a step's S, TPS key tiles side by side (sm90_tile.cuh's wgmma accumulator
// layout), held as the floats kMagic + s. Two bodies with one result: softmax_rows_dequant takes the step's
// max first; softmax_rows_ahead starts the exp2s against the running max before it, where lazy_in_range
// says that cannot overflow. The running max is lazy (quant_max_headroom): the CPU reference,
// quant_attention_cpu with max_headroom_log2, makes the same choice per row and step.
#pragma once
#include <cstdint>

#include <cute/tensor.hpp>

#include "sparse_attention/kernels/sparse/block_sparse_quant.h"
#include "sparse_attention/kernels/sparse/cuda/flash_softmax.cuh"

namespace sattn::kernels::cuda::quant_ws {

// log2(448): P·V takes P as e4m3(448·2^-kHeadroom·p) = e4m3(exp2(s - m - kHeadroom + kLog2PScale)).
inline constexpr float kLog2PScale = 8.807354922057604f;

// 1.5 · 2^23. An s32 score s plus this float's bits is the float kMagic + s exactly while |s| < 2^22 (at
// D = 128, |s| <= 128 · 127² < 2^21): the conversion is an integer add where I2F issues at a quarter rate,
// and kMagic · d joins the exp2's bias (session 16: 2% of the kernel's time).
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

// The lazy rule (quant_max_headroom): the running max m moves to the step's max mx only when nothing was
// attended before or mx exceeds m by more than kHeadroom.
__device__ __forceinline__ float lazy_max(float m, float mx) {
  return m == -INFINITY || mx > m + kHeadroom ? fmaxf(m, mx) : m;
}

// The online softmax of sm90::softmax_rows on the step's S as the floats kMagic + s, leaving P in x and its
// sum in l: tile h of the step's TPS (S columns 64h..64h+63) is dequantized by d[h] (q scale · its k scale ·
// scale · log2 e) and P's scale folded into each score's exp2 argument, so each score costs one FFMA and no
// multiply. The row max is taken per tile on the floats and scaled once. m in log2 units; masked scores are
// -inf (d > 0). The running max is lazy (kHeadroom): it moves only when the step's max exceeds it by
// more than kHeadroom, and P is 448·2^-kHeadroom·exp2(s·d - m), at most 448.
template <int TPS, class S>
__device__ __forceinline__ void softmax_rows_dequant(S& x, const float (&d)[TPS], float (&m)[2], float (&l)[2],
                                                     float (&alpha)[2]) {
  constexpr int kSCols = decltype(cute::size(x))::value / 4;  // n8 column groups: kSCols / TPS per tile
  constexpr int kTileCols = kSCols / TPS;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float mh[TPS];
#pragma unroll
    for (int h = 0; h < TPS; ++h) mh[h] = -INFINITY;
#pragma unroll
    for (int n = 0; n < kSCols; ++n) {
      const int h = n / kTileCols;
      mh[h] = fmaxf(mh[h], fmaxf(x(4 * n + 2 * r), x(4 * n + 2 * r + 1)));
    }
    const float mx = step_row_max(mh, d);
    const float m_new = lazy_max(m[r], mx);
    const float ref = m_new == -INFINITY ? 0.f : m_new;  // nothing attended yet: every p and alpha 0
    alpha[r] = flash::fast_exp2(m[r] - ref);
    m[r] = m_new;
    const float p_ref = ref + kHeadroom - kLog2PScale;
    // s·d - p_ref = x·d - (kMagic·d + p_ref): the bias is rounded once, within 2^-24·kMagic·d (under one unit
    // of s·d).
    float bias[TPS];
#pragma unroll
    for (int h = 0; h < TPS; ++h) bias[h] = fmaf(kMagic, d[h], p_ref);
    // One running sum: four partial sums (a shorter FADD chain) made the kernel 6% slower (session 15, call 3).
    float sum = 0.f;
#pragma unroll
    for (int n = 0; n < kSCols; ++n)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const float p = flash::fast_exp2(fmaf(x(4 * n + 2 * r + c), d[n / kTileCols], -bias[n / kTileCols]));
        x(4 * n + 2 * r + c) = p;
        sum += p;
      }
    l[r] = l[r] * alpha[r] + sum;
  }
}

// softmax_rows_dequant's result, with the exp2s started before the step's max is known: the integer add,
// the max, the FFMA and the exp2 of each score interleave (the ALU's and the MUFU's work overlap; in
// softmax_rows_dequant the max's 192 ALU instructions came first), against the running max m of the steps
// before. Where the step's max exceeds m by more than kHeadroom, m moves to it and that row's P is
// scaled by exp2(m_old - m_new) (rare after a row's first steps). The caller checks that every row of the
// warp has a running max and that no score of the step can take an exp2 argument out of f32's range
// (lazy_in_range). 4-5% faster dense than softmax_rows_dequant (session 19).
template <int TPS, class S, class SU>
__device__ __forceinline__ void softmax_rows_ahead(S& x, SU& xu, const float (&d)[TPS], float (&m)[2], float (&l)[2],
                                                   float (&alpha)[2]) {
  constexpr int kSCols = decltype(cute::size(x))::value / 4;
  constexpr int kTileCols = kSCols / TPS;
  float mx[2], sum[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float bias[TPS], mh[TPS];
#pragma unroll
    for (int h = 0; h < TPS; ++h) bias[h] = fmaf(kMagic, d[h], m[r] + kHeadroom - kLog2PScale), mh[h] = -INFINITY;
    float sm = 0.f;
#pragma unroll
    for (int n = 0; n < kSCols; ++n)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int v = 4 * n + 2 * r + c, h = n / kTileCols;
        xu(v) += kMagicBits;  // x(v) = kMagic + s
        mh[h] = fmaxf(mh[h], x(v));
        const float p = flash::fast_exp2(fmaf(x(v), d[h], -bias[h]));
        x(v) = p;
        sm += p;
      }
    mx[r] = step_row_max(mh, d), sum[r] = sm;
  }
  alpha[0] = alpha[1] = 1.f;
  if (__any_sync(0xffffffffu, mx[0] > m[0] + kHeadroom || mx[1] > m[1] + kHeadroom)) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const float m_new = mx[r] > m[r] + kHeadroom ? mx[r] : m[r];  // lazy_max, with m finite here
      alpha[r] = flash::fast_exp2(m[r] - m_new);
      m[r] = m_new;
      sum[r] *= alpha[r];
#pragma unroll
      for (int n = 0; n < kSCols; ++n) x(4 * n + 2 * r) *= alpha[r], x(4 * n + 2 * r + 1) *= alpha[r];
    }
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) l[r] = l[r] * alpha[r] + sum[r];
}

// Whether softmax_rows_ahead may run on the step (warp-uniform): every row's exp2 argument s·d - m -
// kHeadroom + log2 448 must stay finite however the step's scores fall. By Cauchy-Schwarz a row's
// |s| <= ‖q8 row‖₂ · ‖k8 key‖₂ <= qn[r] · kn[e] (kn: the tile's largest key norm, from the pre-pass), so
// s·d <= qn[r] · max_e(kn[e] · d[e]); a bound 100 over m keeps every exp2 under 2^107 and a step's sum
// finite. Rows without a running max (m = -inf) fail it too. For N(0, 1)-like q and k the bound is about
// 19σ (log2 units) for logits of standard deviation σ, so the check holds up to σ ≈ 7 (session 19).
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
