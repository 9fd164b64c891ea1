// The pre-pass of the quantized block-sparse kernel (numerics: quant.h; reference: reference/quant_cpu.cpp):
//   column_partials: per (batch·head, chunk of tokens) the sum of k and the max |v| per channel;
//   column_finalize: per batch·head the mean of k (K smoothing) and the V scale per channel;
//   quantize_block:  per (64 layout positions, batch·head) q -> s8 with a scale per 32 rows, k - mean -> s8
//                    with one scale, v -> s8 or e4m3 with the channel scales, in layout order (rows gathered
//                    through perm), v transposed; positions past the sequence end become zeros.
// Sums and maxima reduce in a fixed order: the results do not depend on scheduling. Both kernels that read
// q, k, v take 8 channels per thread and load, in one 16-byte load where the strides allow (q_vec...).
// Included once, by block_sparse_quant.cu.
#pragma once
#include <cuda_fp8.h>

#include <cstdint>

#include "cuda/common.cuh"
#include "sparse_attention/kernels/sparse/cuda/layout_order.cuh"

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
};

template <typename T>
__device__ __forceinline__ float element(const void* base, const int64_t s[4], int b, int64_t token, int h, int c) {
  return rt::cuda::to_float(static_cast<const T*>(base)[b * s[0] + token * s[1] + h * s[2] + c * s[3]]);
}

constexpr int kVec = 8;  // 16-bit elements per 16-byte load

// 8 channels c0..c0+7 of (b, token, h) as floats; `vec`: one 16-byte load (see PrepassArgs::q_vec).
template <typename T>
__device__ __forceinline__ void load8(const void* base, const int64_t s[4], bool vec, int b, int64_t token, int h,
                                      int c0, float (&f)[kVec]) {
  static_assert(sizeof(T) == 2, "the pre-pass reads bf16 or f16");
  if (vec) {
    const uint4 raw = __ldg(reinterpret_cast<const uint4*>(static_cast<const T*>(base) + b * s[0] + token * s[1] +
                                                           h * s[2] + c0));
    const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int j = 0; j < kVec; ++j) f[j] = rt::cuda::to_float(e[j]);
  } else {
#pragma unroll
    for (int j = 0; j < kVec; ++j) f[j] = element<T>(base, s, b, token, h, c0 + j);
  }
}

// Each thread owns 8 adjacent channels (one 16-byte load per tensor and token); D / 8 threads cover a token,
// and kLanes tokens are read side by side.
template <typename T, int D>
__global__ void __launch_bounds__(kPrepassThreads) column_partials_kernel(const PrepassArgs a) {
  constexpr int kGroups = D / kVec, kLanes = kPrepassThreads / kGroups;  // tokens read side by side
  __shared__ float sums[kLanes][D], maxes[kLanes][D];
  const int chunk = int(blockIdx.x), bh = int(blockIdx.y), b = bh / a.heads, h = bh % a.heads;
  const int c0 = (int(threadIdx.x) % kGroups) * kVec, lane = int(threadIdx.x) / kGroups;
  const int t0 = chunk * a.chunk_tokens, t1 = min(a.seq_len, t0 + a.chunk_tokens);
  float sum[kVec] = {}, mx[kVec] = {};
#pragma unroll 2
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

__device__ __forceinline__ uint32_t quantize_s8x4(const float* x, float scale) {
  uint32_t word = 0;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int v = max(-127, min(127, __float2int_rn(x[j] / scale)));
    word |= uint32_t(uint8_t(int8_t(v))) << (8 * j);
  }
  return word;
}

// The key held at position l of a transposed V tile: inside every 16 positions, position 4t + i holds key
// 8(i / 2) + 2t + i % 2, the order in which a thread's P values (S accumulator columns 2t, 2t+1 of two
// adjacent n8 blocks) fill its m16n8k32 A fragment.
__device__ __forceinline__ int v_key(int l) {
  const int r = l & 15, t = r >> 2, i = r & 3;
  return (l & ~15) + 8 * (i >> 1) + 2 * t + (i & 1);
}

template <typename T, int D>
__global__ void __launch_bounds__(kPrepassThreads) quantize_block_kernel(const PrepassArgs a) {
  constexpr int kLd = D + 1;  // padded rows: the transposed V reads walk down a column
  __shared__ float x[kPrepassRows * kLd];
  __shared__ float scratch[kPrepassThreads / 32][2];
  const int pos0 = int(blockIdx.x) * kPrepassRows, bh = int(blockIdx.y), b = bh / a.heads, h = bh % a.heads;
  const int tid = int(threadIdx.x);
  const int64_t row0 = int64_t(bh) * a.padded_len + pos0;  // first output row of this block
  const int32_t* perm = head_order(a.perm, a.head_perm, a.layout_heads, a.seq_len, h);
  __shared__ int64_t tokens[kPrepassRows];  // natural token of each row, -1 past the sequence end
  if (tid < kPrepassRows) tokens[tid] = pos0 + tid < a.seq_len ? natural_token(perm, pos0 + tid) : -1;
  __syncthreads();

  // Loads the block's rows of `src` (minus `shift` per channel when given) into x, 8 channels per thread and
  // step; zeros past the end.
  auto load = [&](const void* src, const int64_t* stride, bool vec, const float* shift) {
    for (int idx = tid; idx < kPrepassRows * D / kVec; idx += kPrepassThreads) {
      const int r = idx / (D / kVec), c0 = (idx % (D / kVec)) * kVec;
      float v[kVec] = {};
      if (tokens[r] >= 0) {
        load8<T>(src, stride, vec, b, tokens[r], h, c0, v);
        if (shift != nullptr) {
#pragma unroll
          for (int j = 0; j < kVec; ++j) v[j] -= shift[c0 + j];
        }
      }
#pragma unroll
      for (int j = 0; j < kVec; ++j) x[r * kLd + c0 + j] = v[j];
    }
    __syncthreads();
  };
  // Max |x| over rows [0, 32) and [32, 64).
  auto half_maxes = [&](float& m0, float& m1) {
    m0 = 0.f, m1 = 0.f;
    for (int idx = tid; idx < kPrepassRows * D; idx += kPrepassThreads) {
      const float v = fabsf(x[(idx / D) * kLd + idx % D]);
      if (idx / D < kPrepassRows / 2) m0 = fmaxf(m0, v);
      else m1 = fmaxf(m1, v);
    }
    block_max2(m0, m1, scratch);
  };
  // Writes x as s8 rows, row r with scale scales[r / rows_per_scale].
  auto store_rows = [&](int8_t* dst, const float* scales, int rows_per_scale) {
    for (int w = tid; w < kPrepassRows * D / 4; w += kPrepassThreads) {
      const int r = (w * 4) / D, c = (w * 4) % D;
      float v[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) v[j] = x[r * kLd + c + j];
      *reinterpret_cast<uint32_t*>(dst + (row0 + r) * D + c) = quantize_s8x4(v, scales[r / rows_per_scale]);
    }
    __syncthreads();  // x is reloaded next
  };

  // Q: one scale per 32 rows.
  load(a.q, a.q_stride, a.q_vec, nullptr);
  float m0, m1;
  half_maxes(m0, m1);
  const float qs[2] = {m0 > 0.f ? m0 / a.qk_max : 1.f, m1 > 0.f ? m1 / a.qk_max : 1.f};
  if (tid == 0) a.q_scale[row0 / 32] = qs[0], a.q_scale[row0 / 32 + 1] = qs[1];
  store_rows(a.q8, qs, 32);

  // K minus its mean: one scale for the 64 rows.
  load(a.k, a.k_stride, a.k_vec, a.k_mean + int64_t(bh) * D);
  half_maxes(m0, m1);
  const float m = fmaxf(m0, m1);
  const float ks[1] = {m > 0.f ? m / a.qk_max : 1.f};
  if (tid == 0) a.k_scale[row0 / 64] = ks[0];
  store_rows(a.k8, ks, kPrepassRows);

  // V with its channel scales, transposed: row c of the output holds channel c of the 64 positions.
  load(a.v, a.v_stride, a.v_vec, nullptr);
  const float* vs = a.v_scale + int64_t(bh) * D;
  for (int w = tid; w < D * kPrepassRows / 4; w += kPrepassThreads) {
    const int c = w / (kPrepassRows / 4), l = (w % (kPrepassRows / 4)) * 4;
    float v[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = x[v_key(l + j) * kLd + c];
    uint32_t word;
    if (a.v_fp8) {
      const float s = vs[c];
      const uint32_t lo = __nv_cvt_float2_to_fp8x2(make_float2(v[0] / s, v[1] / s), __NV_SATFINITE, __NV_E4M3);
      const uint32_t hi = __nv_cvt_float2_to_fp8x2(make_float2(v[2] / s, v[3] / s), __NV_SATFINITE, __NV_E4M3);
      word = lo | (hi << 16);
    } else {
      word = quantize_s8x4(v, vs[c]);
    }
    *reinterpret_cast<uint32_t*>(a.vt8 + (int64_t(bh) * D + c) * a.padded_len + pos0 + l) = word;
  }
}

}  // namespace

}  // namespace sattn::kernels::cuda
