// The pre-pass of the quantized block-sparse kernel (numerics: quant.h; reference: reference/quant_cpu.cpp):
//   column_partials: per (batch·head, chunk of tokens) the sum of k and the max |v| per channel;
//   column_finalize: per batch·head the mean of k (K smoothing) and the V scale per channel;
//   quantize_block:  per (64 layout positions, batch·head) q -> s8 with a scale per 32 rows, k - mean -> s8
//                    with one scale (and its largest row norm), v -> s8 or e4m3 with the channel scales, in
//                    layout order (rows gathered
//                    through perm), v transposed; positions past the sequence end become zeros. It multiplies
//                    by each scale's reciprocal (level_s8), where the reference divides.
// Sums and maxima reduce in a fixed order: the results do not depend on scheduling. Both kernels that read
// q, k, v take 8 channels per thread and load, in one 16-byte load where the strides allow (q_vec...).
// quantize_block works in registers: session 14's, with a division and an F2I per value and three passes
// through shared memory per tensor, was issue-bound (ncu, Flux 2048²: 273 µs for 454 MB; now 146 µs).
// Included once, by block_sparse_quant.cu.
#pragma once
#include <cuda_fp8.h>

#include <cstdint>

#include "cuda/common.cuh"
#include "sparse_attention/kernels/sparse/cuda/layout_order.cuh"
#include "sparse_attention/kernels/sparse/cuda/quant_mma.cuh"

namespace sattn::kernels::cuda {

namespace {

constexpr int kPrepassThreads = 256;
constexpr int kPrepassRows = 64;  // layout positions per quantize_block CTA (one K scale block)

struct PrepassArgs {
  const void *q, *k, *v;
  int64_t q_stride[4], k_stride[4], v_stride[4];  // batch, token, head, channel (elements)
  const int32_t* perm;                            // layout position -> natural token; nullptr = identity
  const int32_t* head_perm;                       // perm set per layout head (layout_order.cuh); nullptr = one
  int seq_len, padded_len, heads, chunks, chunk_tokens, layout_heads;
  float qk_max;  // 127 (INT8 Q/K) or 7 (INT4 Q/K, held in s8: sm_90 has no INT4 MMA)
  float v_max;   // 127 (INT8 V) or 448 (e4m3 V)
  bool v_fp8;
  // q / k / v can be read 16 bytes (8 elements) at a time: channels contiguous, every other stride a multiple
  // of 8 elements and the base 16-byte aligned. Uniform over the launch.
  bool q_vec, k_vec, v_vec;
  float* partial_sum;   // [BH, chunks, D]
  float* partial_max;   // [BH, chunks, D]
  float* k_mean;        // [BH, D]
  float* v_scale;       // [BH, D]
  int8_t* q8;           // [BH, padded_len, D]
  int8_t* k8;           // [BH, padded_len, D]
  uint8_t* vt8;         // [BH, D, padded_len], positions permuted inside each 16 (see v_key)
  float* q_scale;       // [BH, padded_len / 32]
  float* k_scale;       // [BH, padded_len / 64]
  float* k_norm;        // [BH, padded_len / 64]: the largest ‖k8 row‖₂ of each block (levels, unscaled)
};

constexpr int kVec = 8;  // 16-bit elements per 16-byte load

// 8 channels c0..c0+7 of (b, token, h) as raw 16-bit values, in one 16-byte load when `vec` (see
// PrepassArgs::q_vec).
template <typename T>
__device__ __forceinline__ uint4 load_raw8(const void* base, const int64_t s[4], bool vec, int b, int64_t token, int h,
                                           int c0) {
  static_assert(sizeof(T) == 2, "the pre-pass reads bf16 or f16");
  const T* row = static_cast<const T*>(base) + b * s[0] + token * s[1] + h * s[2];
  if (vec) return __ldg(reinterpret_cast<const uint4*>(row + c0));
  uint4 raw;
  T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
  for (int j = 0; j < kVec; ++j) e[j] = row[(c0 + j) * s[3]];
  return raw;
}

template <typename T>
__device__ __forceinline__ void to_floats(const uint4& raw, float (&f)[kVec]) {
  const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int j = 0; j < kVec; ++j) f[j] = rt::cuda::to_float(e[j]);
}

// 8 channels c0..c0+7 of (b, token, h) as floats.
template <typename T>
__device__ __forceinline__ void load8(const void* base, const int64_t s[4], bool vec, int b, int64_t token, int h,
                                      int c0, float (&f)[kVec]) {
  to_floats<T>(load_raw8<T>(base, s, vec, b, token, h, c0), f);
}

// Each thread owns 8 adjacent channels (one 16-byte load per tensor and token); D / 8 threads cover a token,
// and kLanes tokens are read side by side. Four CTAs per multiprocessor (64 registers) and four tokens per
// thread in flight: 67 µs for 208 MB at Flux 2048², against 78 µs with three CTAs and two tokens (session 15).
template <typename T, int D>
__global__ void __launch_bounds__(kPrepassThreads, 4) column_partials_kernel(const PrepassArgs a) {
  constexpr int kGroups = D / kVec, kLanes = kPrepassThreads / kGroups;  // tokens read side by side
  __shared__ float sums[kLanes][D], maxes[kLanes][D];
  const int chunk = int(blockIdx.x), bh = int(blockIdx.y), b = bh / a.heads, h = bh % a.heads;
  const int c0 = (int(threadIdx.x) % kGroups) * kVec, lane = int(threadIdx.x) / kGroups;
  const int t0 = chunk * a.chunk_tokens, t1 = min(a.seq_len, t0 + a.chunk_tokens);
  float sum[kVec] = {}, mx[kVec] = {};
#pragma unroll 4
  for (int t = t0 + lane; t < t1; t += kLanes) {
    float kv[kVec], vv[kVec];
    load8<T>(a.k, a.k_stride, a.k_vec, b, t, h, c0, kv);
    load8<T>(a.v, a.v_stride, a.v_vec, b, t, h, c0, vv);
#pragma unroll
    for (int j = 0; j < kVec; ++j) sum[j] += kv[j], mx[j] = fmaxf(mx[j], fabsf(vv[j]));
  }
#pragma unroll
  for (int j = 0; j < kVec; ++j) sums[lane][c0 + j] = sum[j], maxes[lane][c0 + j] = mx[j];
  __syncthreads();
  for (int c = int(threadIdx.x); c < D; c += kPrepassThreads) {
    float total = 0.f, m = 0.f;
    for (int i = 0; i < kLanes; ++i) total += sums[i][c], m = fmaxf(m, maxes[i][c]);
    a.partial_sum[(int64_t(bh) * a.chunks + chunk) * D + c] = total;
    a.partial_max[(int64_t(bh) * a.chunks + chunk) * D + c] = m;
  }
}

template <int D>
__global__ void column_finalize_kernel(const PrepassArgs a) {
  const int bh = int(blockIdx.x), c = int(threadIdx.x);
  float sum = 0.f, mx = 0.f;
  for (int i = 0; i < a.chunks; ++i) {
    sum += a.partial_sum[(int64_t(bh) * a.chunks + i) * D + c];
    mx = fmaxf(mx, a.partial_max[(int64_t(bh) * a.chunks + i) * D + c]);
  }
  a.k_mean[bh * D + c] = sum / float(a.seq_len);
  a.v_scale[bh * D + c] = mx > 0.f ? mx / a.v_max : 1.f;
}

// Max over the CTA of two per-thread values (rows of the first and the second half of the block).
__device__ __forceinline__ void block_max2(float& m0, float& m1, float (*scratch)[2]) {
  for (int o = 16; o > 0; o /= 2) {
    m0 = fmaxf(m0, __shfl_xor_sync(0xffffffffu, m0, o));
    m1 = fmaxf(m1, __shfl_xor_sync(0xffffffffu, m1, o));
  }
  const int warp = int(threadIdx.x) / 32;
  if (threadIdx.x % 32 == 0) scratch[warp][0] = m0, scratch[warp][1] = m1;
  __syncthreads();
  m0 = scratch[0][0], m1 = scratch[0][1];
  for (int w = 1; w < kPrepassThreads / 32; ++w) m0 = fmaxf(m0, scratch[w][0]), m1 = fmaxf(m1, scratch[w][1]);
  __syncthreads();  // scratch is reused by the next call
}

// x · inv rounded to the nearest integer (ties to even), clamped to ±qmax, as the low byte of the result: the
// product rounded to f32, clamped, then added to 1.5 · 2^23, which rounds it to an integer in the float's low
// mantissa bits (two's complement in the low byte for |y| <= 127). No F2I (a quarter-rate conversion) and no
// division: quant_cpu.cpp divides by the scale, so the two differ by one level where x / scale falls within
// an ulp or so of a half-integer.
__device__ __forceinline__ uint32_t level_s8(float x, float inv, float qmax) {
  const float y = fminf(fmaxf(__fmul_rn(x, inv), -qmax), qmax);
  return __float_as_uint(__fadd_rn(y, 12582912.f));
}

// Four levels (level_s8) as bytes, the first in the lowest (as quant_sm90_tile.cuh's pack_u8x4 packs P; that
// one keeps its own expression, whose SASS in the int8 sm90 kernel a shared helper changed).
__device__ __forceinline__ uint32_t bytes4(uint32_t b0, uint32_t b1, uint32_t b2, uint32_t b3) {
  return __byte_perm(__byte_perm(b0, b1, 0x0040), __byte_perm(b2, b3, 0x0040), 0x5410);
}

// The key held at position l of a transposed V tile: inside every 16 positions, position 4t + i holds key
// 8(i / 2) + 2t + i % 2, the order in which a thread's P values (S accumulator columns 2t, 2t+1 of two
// adjacent n8 blocks) fill its m16n8k32 A fragment.
__device__ __forceinline__ int v_key(int l) {
  const int r = l & 15, t = r >> 2, i = r & 3;
  return (l & ~15) + 8 * (i >> 1) + 2 * t + (i & 1);
}

// One CTA per (64 layout positions, batch·head). Every thread loads its 16-byte pieces of q, k and v first
// and quantizes them in registers: q and k by rows (thread = row r0 + kRowsPerPass·i, channels c0..c0+7;
// the block's max |x| per 32 rows reduced through shared memory), v by groups of four output positions
// (thread = positions 4g..4g+3, channels c0..c0+7), so that each of its output words, one per channel, holds
// four transposed keys (v_key) and needs no transpose through shared memory.
template <typename T, int D>
__global__ void __launch_bounds__(kPrepassThreads, 3) quantize_block_kernel(const PrepassArgs a) {
  constexpr int kChunks = D / kVec;                                // 16-byte pieces per row
  constexpr int kRowsPerPass = kPrepassThreads / kChunks;          // 16 (D = 128) or 32
  constexpr int kPasses = kPrepassRows / kRowsPerPass;             // rows per thread: 4 or 2
  constexpr int kGroups = kPrepassRows / 4;                        // V: groups of four positions
  constexpr int kVItems = kGroups * kChunks;                       // 256 (D = 128) or 128: one per thread
  static_assert(kRowsPerPass <= 32 && kVItems <= kPrepassThreads, "one V item per thread");
  __shared__ float scratch[kPrepassThreads / 32][2];
  __shared__ int32_t tokens[kPrepassRows];  // natural token of each position, -1 past the sequence end
  const int pos0 = int(blockIdx.x) * kPrepassRows, bh = int(blockIdx.y), b = bh / a.heads, h = bh % a.heads;
  const int tid = int(threadIdx.x);
  const int64_t row0 = int64_t(bh) * a.padded_len + pos0;  // first output row of this block
  const int32_t* perm = head_order(a.perm, a.head_perm, a.layout_heads, a.seq_len, h);
  if (tid < kPrepassRows) tokens[tid] = pos0 + tid < a.seq_len ? int32_t(natural_token(perm, pos0 + tid)) : -1;
  __syncthreads();

  const int r0 = tid / kChunks, c0 = (tid % kChunks) * kVec;    // q, k: rows r0 + kRowsPerPass · i
  const int g = tid % kGroups, vc0 = (tid / kGroups) * kVec;   // v: positions 4g..4g+3, channels vc0..
  const bool v_item = tid < kVItems;
  // Zeros for positions past the sequence end (token -1).
  auto load = [&](const void* src, const int64_t* stride, bool vec, int token, int c) {
    return token >= 0 ? load_raw8<T>(src, stride, vec, b, token, h, c) : make_uint4(0, 0, 0, 0);
  };
  uint4 q_raw[kPasses], k_raw[kPasses], v_raw[4];
#pragma unroll
  for (int i = 0; i < kPasses; ++i) q_raw[i] = load(a.q, a.q_stride, a.q_vec, tokens[r0 + kRowsPerPass * i], c0);
#pragma unroll
  for (int i = 0; i < kPasses; ++i) k_raw[i] = load(a.k, a.k_stride, a.k_vec, tokens[r0 + kRowsPerPass * i], c0);
#pragma unroll
  for (int j = 0; j < 4; ++j) v_raw[j] = load(a.v, a.v_stride, a.v_vec, v_item ? tokens[v_key(4 * g + j)] : -1, vc0);

  // Rows [0, 32) and [32, 64): pass i lies in half (kRowsPerPass · i) / 32.
  auto half = [](int i) { return (kRowsPerPass * i) / 32; };
  // Writes pass i's 8 levels of row r0 + kRowsPerPass · i to dst (8 bytes); returns their sum of squares.
  auto store8 = [&](int8_t* dst, int i, const float (&x)[kVec], float inv) {
    uint32_t l[kVec];
    int sq = 0;
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      l[j] = level_s8(x[j], inv, a.qk_max);
      const int level = int(l[j] - 0x4B400000u);
      sq += level * level;
    }
    *reinterpret_cast<uint2*>(dst + (row0 + r0 + kRowsPerPass * i) * D + c0) =
        make_uint2(bytes4(l[0], l[1], l[2], l[3]), bytes4(l[4], l[5], l[6], l[7]));
    return sq;
  };

  // Each tensor is converted from its raw registers twice, for the max and for the levels: holding its floats
  // instead pushed ptxas past the 80 registers that three CTAs per multiprocessor allow.
  // Q: one scale per 32 rows.
  {
    float m[2] = {0.f, 0.f};
#pragma unroll
    for (int i = 0; i < kPasses; ++i) {
      float x[kVec];
      to_floats<T>(q_raw[i], x);
#pragma unroll
      for (int j = 0; j < kVec; ++j) m[half(i)] = fmaxf(m[half(i)], fabsf(x[j]));
    }
    block_max2(m[0], m[1], scratch);
    const float qs[2] = {m[0] > 0.f ? m[0] / a.qk_max : 1.f, m[1] > 0.f ? m[1] / a.qk_max : 1.f};
    if (tid == 0) a.q_scale[row0 / 32] = qs[0], a.q_scale[row0 / 32 + 1] = qs[1];
    const float inv[2] = {1.f / qs[0], 1.f / qs[1]};
#pragma unroll
    for (int i = 0; i < kPasses; ++i) {
      float x[kVec];
      to_floats<T>(q_raw[i], x);
      store8(a.q8, i, x, inv[half(i)]);
    }
  }
  // K minus its mean (rows past the end stay zero): one scale for the 64 rows.
  {
    float mean[kVec];
#pragma unroll
    for (int j = 0; j < kVec; ++j) mean[j] = a.k_mean[int64_t(bh) * D + c0 + j];
    auto centred = [&](int i, float (&x)[kVec]) {
      to_floats<T>(k_raw[i], x);
      if (tokens[r0 + kRowsPerPass * i] >= 0) {
#pragma unroll
        for (int j = 0; j < kVec; ++j) x[j] -= mean[j];
      }
    };
    float m[2] = {0.f, 0.f};
#pragma unroll
    for (int i = 0; i < kPasses; ++i) {
      float x[kVec];
      centred(i, x);
#pragma unroll
      for (int j = 0; j < kVec; ++j) m[0] = fmaxf(m[0], fabsf(x[j]));
    }
    block_max2(m[0], m[1], scratch);
    const float ks = m[0] > 0.f ? m[0] / a.qk_max : 1.f;
    if (tid == 0) a.k_scale[row0 / 64] = ks;
    const float inv = 1.f / ks;
    // The block's largest ‖k8 row‖₂, for the sm90ws kernel's bound on a step's scores (lazy_in_range): a
    // row's kChunks threads are consecutive lanes.
    int sq_max = 0;
#pragma unroll
    for (int i = 0; i < kPasses; ++i) {
      float x[kVec];
      centred(i, x);
      int sq = store8(a.k8, i, x, inv);
#pragma unroll
      for (int o = 1; o < kChunks; o *= 2) sq += __shfl_xor_sync(0xffffffffu, sq, o);
      sq_max = max(sq_max, sq);
    }
    float n0 = float(sq_max), n1 = 0.f;  // exact: at most 128 · 127² < 2^24
    block_max2(n0, n1, scratch);
    if (tid == 0) a.k_norm[row0 / 64] = sqrtf(n0);
  }
  // V with its channel scales: output row c (channel c) gets positions 4g..4g+3, keys v_key(4g + j).
  if (v_item) {
    const float* vs = a.v_scale + int64_t(bh) * D + vc0;
    float x[4][kVec];
#pragma unroll
    for (int j = 0; j < 4; ++j) to_floats<T>(v_raw[j], x[j]);
#pragma unroll
    for (int c = 0; c < kVec; ++c) {
      const float inv = 1.f / vs[c];
      uint32_t word;
      if (a.v_fp8) {
        word = pack_e4m3x4(__fmul_rn(x[0][c], inv), __fmul_rn(x[1][c], inv), __fmul_rn(x[2][c], inv),
                           __fmul_rn(x[3][c], inv));
      } else {
        word = bytes4(level_s8(x[0][c], inv, a.v_max), level_s8(x[1][c], inv, a.v_max),
                      level_s8(x[2][c], inv, a.v_max), level_s8(x[3][c], inv, a.v_max));
      }
      *reinterpret_cast<uint32_t*>(a.vt8 + (int64_t(bh) * D + vc0 + c) * a.padded_len + pos0 + 4 * g) = word;
    }
  }
}

}  // namespace

}  // namespace sattn::kernels::cuda
