// SLA's dynamic planner on the device (topk_plan.h). Three launches on the stream: the tile means of q and
// of k (f32, summed in token order and divided by the count, as methods/topk.cpp does, so the pooled values
// match the CPU's bit for bit), then one CTA per (query tile, head, batch) that scores its row against every
// key tile (one warp per key tile), finds the critical-th largest score by a byte-wise radix select over
// order-preserving keys, and writes the chosen tiles in ascending order with warp ballots. O(nk · D) work
// per row; the offsets are fixed (e · critical) and written by a small kernel.
#include "sparse_attention/kernels/sparse/cuda/topk_plan.h"

#include <cstdint>

#include "base/check.h"
#include "cuda/common.cuh"
#include "cuda/cuda_ops.h"
#include "cuda/device_state.h"

namespace sattn::kernels::cuda {

namespace {

constexpr int kPoolThreads = 128;
constexpr int kSelectThreads = 256;
constexpr int64_t kMaxHeadDim = 1024;

// out[b, h, t, :] = mean of x[b, i, h, :] over the tokens i of tile t. Grid (tiles, heads, batch).
template <typename T>
__global__ void pool_kernel(const T* x, int64_t sb, int64_t sl, int64_t sh, int64_t sd, int len, int tile, int d_n,
                            float* out) {
  const int t = int(blockIdx.x), h = int(blockIdx.y), b = int(blockIdx.z);
  const int begin = t * tile, end = min(len, begin + tile);
  const T* base = x + b * sb + h * sh;
  float* o = out + ((int64_t(b) * gridDim.y + h) * gridDim.x + t) * d_n;
  for (int c = int(threadIdx.x); c < d_n; c += int(blockDim.x)) {
    float sum = 0.f;
    for (int i = begin; i < end; ++i) sum += rt::cuda::to_float(base[i * sl + c * sd]);
    o[c] = sum / float(end - begin);
  }
}

// Larger float -> larger unsigned key; -0 ranks as +0 (equal scores: the lower index wins on both sides).
__device__ __forceinline__ uint32_t order_key(float x) {
  uint32_t u = __float_as_uint(x);
  if ((u << 1) == 0u) u = 0u;
  return (u & 0x80000000u) != 0u ? ~u : (u | 0x80000000u);
}

// One CTA per (query tile, head, batch) = grid (nq, heads, batch). Dynamic shared memory: the row's pooled
// q (d_n floats), then its nk keys.
__global__ void __launch_bounds__(kSelectThreads) select_kernel(const float* pq, const float* pk, int nq, int nk, int d_n,
                                                                float scale, int critical, int32_t* full_index) {
  extern __shared__ __align__(16) unsigned char smem[];
  float* q = reinterpret_cast<float*>(smem);
  uint32_t* key = reinterpret_cast<uint32_t*>(q + d_n);
  __shared__ int hist[256];
  __shared__ uint32_t s_prefix;
  __shared__ int s_remaining;
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, warps = int(blockDim.x) / 32;
  const int64_t bh = int64_t(blockIdx.z) * gridDim.y + blockIdx.y, e = bh * nq + blockIdx.x;
  for (int c = int(threadIdx.x); c < d_n; c += int(blockDim.x)) q[c] = pq[e * d_n + c];
  if (threadIdx.x == 0) s_prefix = 0u, s_remaining = critical;
  __syncthreads();
  for (int j = warp; j < nk; j += warps) {
    const float* kr = pk + (bh * nk + j) * d_n;
    float dot = 0.f;
    for (int c = lane; c < d_n; c += 32) dot = fmaf(q[c], kr[c], dot);
#pragma unroll
    for (int off = 16; off > 0; off /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, off);
    if (lane == 0) key[j] = order_key(scale * dot);
  }

  // Radix select, most significant byte first. Invariant: at least s_remaining keys match s_prefix on the
  // bytes chosen so far, and s_remaining of them are still to be taken. In the end s_prefix is the
  // critical-th largest key and s_remaining the number of keys equal to it that are taken (lowest first).
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = int(threadIdx.x); i < 256; i += int(blockDim.x)) hist[i] = 0;
    __syncthreads();  // the keys (first pass) and the previous pass's prefix are visible, hist is clear
    const uint32_t high = shift == 24 ? 0u : 0xffffffffu << (shift + 8), prefix = s_prefix;
    for (int j = int(threadIdx.x); j < nk; j += int(blockDim.x))
      if ((key[j] & high) == prefix) atomicAdd(&hist[(key[j] >> shift) & 0xffu], 1);
    __syncthreads();
    if (threadIdx.x == 0) {
      int remaining = s_remaining, digit = 255;
      while (hist[digit] < remaining) remaining -= hist[digit--];
      s_prefix = prefix | (uint32_t(digit) << shift);
      s_remaining = remaining;
    }
    __syncthreads();  // the scan above is done with hist before the next pass clears it
  }

  // Ascending write: every key above the threshold, and the first s_remaining keys equal to it.
  if (warp != 0) return;
  const uint32_t threshold = s_prefix;
  int take = s_remaining, written = 0;
  int32_t* out = full_index + e * critical;
  const unsigned below = (1u << lane) - 1u;
  for (int j0 = 0; j0 < nk; j0 += 32) {
    const int j = j0 + lane;
    const uint32_t kj = j < nk ? key[j] : 0u;
    const bool eq = j < nk && kj == threshold;
    const unsigned eq_mask = __ballot_sync(0xffffffffu, eq);
    const bool sel = j < nk && (kj > threshold || (eq && __popc(eq_mask & below) < take));
    const unsigned sel_mask = __ballot_sync(0xffffffffu, sel);
    if (sel) out[written + __popc(sel_mask & below)] = j;
    written += __popc(sel_mask);
    take = max(0, take - __popc(eq_mask));
  }
}

__global__ void offsets_kernel(int32_t* full_offsets, int32_t* partial_offsets, int64_t entries, int critical) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i > entries) return;
  full_offsets[i] = int32_t(i * critical);
  partial_offsets[i] = 0;
}

void pool(const rt::Context& ctx, const rt::Tensor& x, int64_t tile, int64_t tiles, const rt::Tensor& out) {
  const dim3 grid{unsigned(tiles), unsigned(x.size(2)), unsigned(x.size(0))};
  DITRUN_DISPATCH_FLOAT(x.dtype(), T, [&] {
    pool_kernel<T><<<grid, kPoolThreads, 0, ctx.cuda().stream>>>(
        static_cast<const T*>(x.raw_data()), x.strides()[0], x.strides()[1], x.strides()[2], x.strides()[3], int(x.size(1)),
        int(tile), int(x.size(3)), static_cast<float*>(out.raw_data()));
  });
  rt::cuda::check_launch(ctx, "sla_plan_topk.pool");
}

}  // namespace

UploadedLayout plan_topk(const rt::Context& ctx, const rt::Tensor& q, const rt::Tensor& k, float scale,
                         int64_t critical, const BlockLayout& shape) {
  const int64_t batch = shape.batch, heads = shape.heads, len = shape.seq_len;
  const int64_t nq = shape.num_q_tiles(), nk = shape.num_kv_tiles(), entries = shape.entries();
  for (const rt::Tensor* t : {&q, &k})
    CHECK(t->dim() == 4 && t->device().is_cuda() && t->size(0) == batch && t->size(1) == len && t->size(2) == heads,
          "sla_plan_topk: ", t->str(), " must be a GPU [B, L, H, D] tensor with B x L x H = ", batch, " x ", len, " x ", heads);
  const int64_t d = q.size(3);
  CHECK(k.size(3) == d && k.dtype() == q.dtype(), "sla_plan_topk: q ", q.str(), " and k ", k.str(), " differ in D or dtype");
  CHECK(d >= 1 && d <= kMaxHeadDim, "sla_plan_topk: head dim ", d, " outside [1, ", kMaxHeadDim, "]");
  CHECK(nk >= 1 && nk <= kTopkMaxKvTiles, "sla_plan_topk: ", nk, " key tiles per row; the planner takes 1 to ", kTopkMaxKvTiles);
  CHECK(critical >= 1 && critical <= nk, "sla_plan_topk: ", critical, " critical tiles of ", nk);
  CHECK(heads <= 65535 && batch <= 65535, "sla_plan_topk: grid of ", batch, " x ", heads);
  const int64_t words = 2 * (entries + 1) + entries * critical;
  CHECK(words <= INT32_MAX, "sla_plan_topk: ", entries, " rows of ", critical, " tiles overflow the int32 lists");

  const rt::Tensor pq = rt::cuda::empty(ctx, {batch, heads, nq, d}, rt::DType::F32);
  const rt::Tensor pk = rt::cuda::empty(ctx, {batch, heads, nk, d}, rt::DType::F32);
  pool(ctx, q, shape.q_tile, nq, pq);
  pool(ctx, k, shape.kv_tile, nk, pk);

  UploadedLayout u;
  u.buffer = rt::cuda::empty(ctx, {words}, rt::DType::F32);  // int32 words (rt::DType has no int32)
  int32_t* base = static_cast<int32_t*>(u.buffer.raw_data());
  int32_t *full_offsets = base, *partial_offsets = base + entries + 1, *full_index = base + 2 * (entries + 1);
  offsets_kernel<<<rt::cuda::blocks_for(entries + 1, 256), 256, 0, ctx.cuda().stream>>>(full_offsets, partial_offsets,
                                                                                         entries, int(critical));
  rt::cuda::check_launch(ctx, "sla_plan_topk.offsets");
  if (entries > 0) {
    const dim3 grid{unsigned(nq), unsigned(heads), unsigned(batch)};
    const size_t smem = size_t(d + nk) * sizeof(float);
    select_kernel<<<grid, kSelectThreads, smem, ctx.cuda().stream>>>(static_cast<const float*>(pq.raw_data()),
                                                                     static_cast<const float*>(pk.raw_data()), int(nq),
                                                                     int(nk), int(d), scale, int(critical), full_index);
    rt::cuda::check_launch(ctx, "sla_plan_topk.select");
  }
  u.perm = nullptr;
  u.full_offsets = full_offsets, u.full_index = full_index;
  // Every partial list is empty, so the kernel never reads partial_index or the masks.
  u.partial_offsets = partial_offsets, u.partial_index = partial_offsets;
  u.partial_masks = nullptr;
  u.boxes_usable = true;  // the identity order: every tile a run of tokens, which sm90ws copies by TMA
  u.words = size_t(words);
  return u;
}

}  // namespace sattn::kernels::cuda
