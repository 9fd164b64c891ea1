// layer_norm, rms_norm and softmax over the last dim (one row per warp slice or block, rows.cuh), and
// group_norm, whose groups (up to ~16M elements in the VAE) are reduced by many blocks: per-block
// moments, merged per group by a second kernel, then an elementwise pass. All statistics in f32: the
// row passes are exact two-pass sums; group moments merge by Chan et al.'s pairwise update.
#include <cmath>

#include "cuda/rows.cuh"

namespace rt::cuda {

Tensor layer_norm(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  Tensor out = cuda::empty(ctx, x.shape(), x.dtype());
  const Tensor w = param_as(ctx, weight, x.dtype()), b = param_as(ctx, bias, x.dtype());
  DITRUN_DISPATCH_FLOAT(x.dtype(), T, [&] {
    launch_norm_rows<T>(ctx, x, out, LayerNormStats{eps}, ColumnAffine<T>{ptr_or_null<T>(w), ptr_or_null<T>(b)},
                        "layer_norm");
  });
  return out;
}

Tensor rms_norm(const Context& ctx, const Tensor& x, const Tensor& weight, float eps) {
  Tensor out = cuda::empty(ctx, x.shape(), x.dtype());
  const Tensor w = param_as(ctx, weight, x.dtype());
  DITRUN_DISPATCH_FLOAT(x.dtype(), T, [&] {
    launch_norm_rows<T>(ctx, x, out, RmsNormStats{eps}, ColumnAffine<T>{ptr_or_null<T>(w), nullptr}, "rms_norm");
  });
  return out;
}

// exp(x − max)/Σ exp(x − max); a row of −inf gives zeros, as on the CPU.
struct SoftmaxStats {
  float max = 0.f, inv = 0.f;
  template <typename Reduce> __device__ void compute(Reduce& reduce, int64_t len) {
    max = reduce([](float v) { return v; }, MaxOp{}, -INFINITY);
    const float m = max;
    const float sum = reduce([m](float v) { return m == -INFINITY ? 0.f : expf(v - m); }, SumOp{}, 0.f);
    inv = sum > 0.f ? 1.f / sum : 0.f;
  }
  __device__ __forceinline__ float apply(float v) const { return max == -INFINITY ? 0.f : expf(v - max) * inv; }
};

struct NoEpilogue {
  bool packable(int) const { return true; }
  template <int kVec, bool kPacked> __device__ void apply(int64_t, int64_t, float (&)[kVec]) const {}
};

Tensor softmax(const Context& ctx, const Tensor& x) {
  Tensor out = cuda::empty(ctx, x.shape(), x.dtype());
  DITRUN_DISPATCH_FLOAT(x.dtype(), T, [&] { launch_norm_rows<T>(ctx, x, out, SoftmaxStats{}, NoEpilogue{}, "softmax"); });
  return out;
}

// ---- group_norm -----------------------------------------------------------------------------------

// Count, mean and sum of squared deviations of a set of values.
struct Moments {
  float n = 0.f, mean = 0.f, m2 = 0.f;
};

__device__ __forceinline__ Moments merge(const Moments& a, const Moments& b) {
  const float n = a.n + b.n;
  if (n == 0.f) return a;
  const float d = b.mean - a.mean, fb = b.n / n;
  return {n, a.mean + d * fb, a.m2 + b.m2 + d * d * a.n * fb};
}

__device__ __forceinline__ Moments warp_merge(Moments m) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const Moments other{__shfl_xor_sync(0xffffffffu, m.n, o), __shfl_xor_sync(0xffffffffu, m.mean, o),
                        __shfl_xor_sync(0xffffffffu, m.m2, o)};
    m = merge(m, other);
  }
  return m;
}

// Block b covers part b % parts of group b / parts (a contiguous range of its packs) and writes the
// range's moments to partial[3b..3b+2]. Element i of group g is logical element g·group_size + i of x
// (groups are contiguous in row-major order), found through ix unless x is contiguous (kPacked).
template <typename T, int kVec, bool kPacked>
static __global__ void group_moments_kernel(const T* x, StridedIndexer ix, int64_t group_size, int parts, float* partial) {
  __shared__ float warps[32][3];  // (n, mean, m2) per warp; Moments has initializers, which __shared__ forbids
  const int64_t group = blockIdx.x / parts, part = blockIdx.x % parts;
  const int64_t packs = group_size / kVec, chunk = (packs + parts - 1) / parts;
  const int64_t end = std::min(packs, (part + 1) * chunk);
  Moments m;
  for (int64_t p = part * chunk + threadIdx.x; p < end; p += blockDim.x) {
    const int64_t i = group * group_size + p * kVec;
    float v[kVec];
    load_vec<kVec, kPacked>(x + (kPacked ? i : ix(i)), 1, v);
    float s = 0.f, q = 0.f;
#pragma unroll
    for (int k = 0; k < kVec; ++k) s += v[k];
    const float mean = s / float(kVec);
#pragma unroll
    for (int k = 0; k < kVec; ++k) q += (v[k] - mean) * (v[k] - mean);
    m = merge(m, Moments{float(kVec), mean, q});
  }
  m = warp_merge(m);
  if (threadIdx.x % 32 == 0) {
    warps[threadIdx.x / 32][0] = m.n;
    warps[threadIdx.x / 32][1] = m.mean;
    warps[threadIdx.x / 32][2] = m.m2;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x / 32); ++w) m = merge(m, Moments{warps[w][0], warps[w][1], warps[w][2]});
    float* out = partial + 3 * int64_t(blockIdx.x);
    out[0] = m.n;
    out[1] = m.mean;
    out[2] = m.m2;
  }
}

// One warp per group: merges the group's `parts` partial moments into stats[2g] = mean, [2g+1] = rstd.
static __global__ void group_finalize_kernel(const float* partial, int parts, int64_t groups, int64_t group_size,
                                             float eps, float* stats) {
  const int64_t g = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = int(threadIdx.x % 32);
  if (g >= groups) return;  // a whole warp leaves together, so the shuffles below stay converged
  Moments m;
  for (int p = lane; p < parts; p += 32) {
    const float* q = partial + 3 * (g * parts + p);
    m = merge(m, Moments{q[0], q[1], q[2]});
  }
  m = warp_merge(m);
  if (lane == 0) {
    stats[2 * g] = m.mean;
    stats[2 * g + 1] = rsqrtf(m.m2 / float(group_size) + eps);
  }
}

// Rows are the N·C channel planes (`len` = spatial size each).
template <typename T> struct GroupNormApply {
  T* out;
  const T* x;
  StridedIndexer ix;
  const float* stats;
  const T* w;
  const T* b;
  int64_t channels, per_group, groups, len;
  template <int kVec, bool kPacked> __device__ void pack(int64_t row, int64_t col) const {
    const int64_t c = row % channels, g = (row / channels) * groups + c / per_group;
    const float mean = stats[2 * g], rstd = stats[2 * g + 1];
    const float scale = w ? to_float(w[c]) : 1.f, shift = b ? to_float(b[c]) : 0.f;
    const int64_t i = row * len + col;
    float v[kVec];
    load_vec<kVec, kPacked>(x + (kPacked ? i : ix(i)), 1, v);
#pragma unroll
    for (int k = 0; k < kVec; ++k) v[k] = (v[k] - mean) * rstd * scale + shift;
    store_vec<kVec, kPacked>(out + i, v);
  }
};

template <typename T, int kVec, bool kPacked>
static void group_norm_as(const Context& ctx, const Tensor& x, int64_t groups, const T* w, const T* b, float eps,
                          const Tensor& out) {
  const int64_t n = x.size(0), c = x.size(1), len = x.numel() / (n * c), ngroups = n * groups;
  const int64_t group_size = (c / groups) * len, packs = group_size / kVec;
  const StridedIndexer ix = collapse<1>(x.shape(), {x.strides()})[0];
  const T* xp = static_cast<const T*>(x.raw_data());
  const DeviceState& st = ctx.cuda();
  // About 8 blocks of 256 threads per SM in all, each with at least ~4 packs a thread.
  const int64_t parts = std::clamp<int64_t>(std::min((int64_t(st.sm_count) * 8 + ngroups - 1) / ngroups, (packs + 1023) / 1024),
                                            1, 4096);
  DITRUN_CHECK(ngroups * parts < (int64_t(1) << 31), "group_norm: ", x.str(), " in ", groups, " groups");
  const Tensor partial = cuda::empty(ctx, {ngroups * parts * 3}, DType::F32);
  const Tensor stats = cuda::empty(ctx, {ngroups * 2}, DType::F32);
  group_moments_kernel<T, kVec, kPacked><<<unsigned(ngroups * parts), 256, 0, st.stream>>>(
      xp, ix, group_size, int(parts), static_cast<float*>(partial.raw_data()));
  check_launch(ctx, "group_norm");
  group_finalize_kernel<<<unsigned((ngroups + 7) / 8), 256, 0, st.stream>>>(
      static_cast<const float*>(partial.raw_data()), int(parts), ngroups, group_size, eps,
      static_cast<float*>(stats.raw_data()));
  check_launch(ctx, "group_norm");
  const GroupNormApply<T> f{static_cast<T*>(out.raw_data()), xp, ix, static_cast<const float*>(stats.raw_data()), w, b,
                            c, c / groups, groups, len};
  launch_pack_rows<kVec, kPacked>(ctx, n * c, len, f, "group_norm");
}

Tensor group_norm(const Context& ctx, const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias,
                  float eps) {
  Tensor out = cuda::empty(ctx, x.shape(), x.dtype());
  if (out.numel() == 0) return out;
  const Tensor w = param_as(ctx, weight, x.dtype()), b = param_as(ctx, bias, x.dtype());
  const int64_t len = x.numel() / (x.size(0) * x.size(1));
  DITRUN_DISPATCH_FLOAT(x.dtype(), T, [&] {
    constexpr int kV = kWide<T>;
    if (x.is_contiguous() && len % kV == 0 && aligned(x.raw_data(), 16) && aligned(out.raw_data(), 16))
      group_norm_as<T, kV, true>(ctx, x, groups, ptr_or_null<T>(w), ptr_or_null<T>(b), eps, out);
    else
      group_norm_as<T, 1, false>(ctx, x, groups, ptr_or_null<T>(w), ptr_or_null<T>(b), eps, out);
  });
  return out;
}

}  // namespace rt::cuda
