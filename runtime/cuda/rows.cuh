// Building blocks for the elementwise, normalization, layout and fused kernels: aligned packs (16-byte
// loads), strided indexers with collapsed dims, row-group reductions, and two kernel skeletons (packs
// along rows; one normalization per row) that each op fills in with a small functor.
//
// Every kernel comes in a wide variant (kVec = 16 bytes of the storage dtype, used when the rows are
// contiguous, aligned and a multiple of kVec long) and a narrow one (kVec = 1, or 2 for RoPE pairs) that
// takes any strides. Pointers passed to kernels are raw_data() (already at the view's first element), so
// the indexers built here have offset 0.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/cuda_ops.h"
#include "cuda/device_state.h"
#include "ops.h"

namespace rt::cuda {

template <typename T, int N> struct alignas(sizeof(T) * N) Pack { T v[N]; };
template <typename T> inline constexpr int kWide = int(16 / sizeof(T));

// kVec values starting at p: one aligned pack when kPacked, else elements `stride` apart (0 repeats one).
template <int kVec, bool kPacked, typename T>
__device__ __forceinline__ void load_vec(const T* p, int64_t stride, float (&f)[kVec]) {
  if constexpr (kPacked) {
    const Pack<T, kVec> pk = *reinterpret_cast<const Pack<T, kVec>*>(p);
#pragma unroll
    for (int k = 0; k < kVec; ++k) f[k] = to_float(pk.v[k]);
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k) f[k] = to_float(p[k * stride]);
  }
}

// kVec values to consecutive elements at p (an aligned pack when kPacked).
template <int kVec, bool kPacked, typename T> __device__ __forceinline__ void store_vec(T* p, const float (&f)[kVec]) {
  if constexpr (kPacked) {
    Pack<T, kVec> pk;
#pragma unroll
    for (int k = 0; k < kVec; ++k) pk.v[k] = from_float<T>(f[k]);
    *reinterpret_cast<Pack<T, kVec>*>(p) = pk;
  } else {
#pragma unroll
    for (int k = 0; k < kVec; ++k) p[k] = from_float<T>(f[k]);
  }
}

inline bool aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// Indexers over `shape` for N views of that shape (their strides). Size-1 dims are dropped and
// neighbouring dims merged where all N views allow it, so a contiguous tensor becomes one dim and a
// bias broadcast over rows two; kernels then divide once or twice per element instead of once per dim.
template <size_t N>
std::array<StridedIndexer, N> collapse(const Shape& shape, const std::array<Shape, N>& strides) {
  std::array<StridedIndexer, N> ix{};
  int rank = 0;
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    const int64_t n = shape[size_t(d)];
    if (n == 1) continue;
    bool merge = rank > 0;
    for (size_t k = 0; k < N && merge; ++k)
      merge = strides[k][size_t(d)] == ix[k].stride[rank - 1] * ix[k].size[rank - 1];
    if (merge) {
      for (size_t k = 0; k < N; ++k) ix[k].size[rank - 1] *= n;
      continue;
    }
    DITRUN_CHECK(rank < kMaxRank, "CUDA kernels take views of at most ", kMaxRank, " uncollapsible dims, got ",
                 shape_str(shape));
    for (size_t k = 0; k < N; ++k) {
      ix[k].size[rank] = n;
      ix[k].stride[rank] = strides[k][size_t(d)];
    }
    ++rank;
  }
  for (auto& i : ix) i.rank = rank;
  return ix;
}

// A collapsed view split into rows: the innermost dim (len elements, `stride` apart) and an indexer
// over the outer dims that maps a row number to the row's first element.
struct Rows {
  StridedIndexer outer;
  int64_t len = 1, stride = 1;
};

inline Rows split_rows(const StridedIndexer& ix) {
  Rows r;
  if (ix.rank == 0) return r;
  r.len = ix.size[0];
  r.stride = ix.stride[0];
  r.outer.rank = ix.rank - 1;
  for (int d = 1; d < ix.rank; ++d) {
    r.outer.size[d - 1] = ix.size[d];
    r.outer.stride[d - 1] = ix.stride[d];
  }
  return r;
}

// Whether rows of `r` over `p` can be read as aligned packs of kVec elements: unit (or, if allowed,
// zero) inner stride, and every row start aligned.
template <typename T> bool packable(const T* p, const Rows& r, int vec, bool allow_broadcast = false) {
  if (r.stride == 0 && allow_broadcast) return true;
  if (r.stride != 1 || r.len % vec != 0 || !aligned(p, sizeof(T) * size_t(vec))) return false;
  for (int d = 0; d < r.outer.rank; ++d)
    if (r.outer.stride[d] % vec != 0) return false;
  return true;
}

// Rows of a single view: its shape without the last dim, and the last dim's stride (not collapsed, so
// a row stays one row of the tensor).
inline Rows last_dim_rows(const Tensor& t) {
  const Shape outer(t.shape().begin(), t.shape().end() - 1);
  const Shape strides(t.strides().begin(), t.strides().end() - 1);
  Rows r;
  r.outer = collapse<1>(outer, {strides})[0];
  r.len = t.size(-1);
  r.stride = t.strides().back();
  return r;
}

// ---- packs along rows ---------------------------------------------------------------------------------
// f.template pack<kVec, kPacked>(row, col) handles elements [col, col + kVec) of row `row`; rows are
// `len` long (a multiple of kVec). Threads are (x: packs of a row, y: rows) and blockIdx.y splits long
// rows, so a thread stays on one row for several packs and the row's offsets (divisions through the
// indexers) are computed once per row, not per pack.
template <int kVec, bool kPacked, typename F>
static __global__ void pack_rows_kernel(int64_t rows, int64_t per_row, F f) {
  const int64_t row_step = int64_t(gridDim.x) * blockDim.y, col_step = int64_t(gridDim.y) * blockDim.x;
  for (int64_t row = int64_t(blockIdx.x) * blockDim.y + threadIdx.y; row < rows; row += row_step)
    for (int64_t p = int64_t(blockIdx.y) * blockDim.x + threadIdx.x; p < per_row; p += col_step)
      f.template pack<kVec, kPacked>(row, p * kVec);
}

// 256 threads a block, x wide enough for about four packs a thread along a row; at most ~32 blocks per
// SM in all (the loops cover the rest).
template <int kVec, bool kPacked, typename F>
void launch_pack_rows(const Context& ctx, int64_t rows, int64_t len, const F& f, const char* op) {
  const int64_t per_row = len / kVec;
  if (rows * per_row == 0) return;
  int64_t tx = 1;
  while (tx < 256 && tx * 4 < per_row) tx *= 2;
  const int64_t ty = 256 / tx;
  const int64_t col_blocks = std::min<int64_t>((per_row + tx * 4 - 1) / (tx * 4), 65535);
  const int64_t max_blocks = std::max<int64_t>(1, int64_t(ctx.cuda().sm_count) * 32 / col_blocks);
  const int64_t row_blocks = std::min((rows + ty - 1) / ty, max_blocks);
  const dim3 grid{unsigned(row_blocks), unsigned(col_blocks)}, block{unsigned(tx), unsigned(ty)};
  pack_rows_kernel<kVec, kPacked><<<grid, block, 0, ctx.cuda().stream>>>(rows, per_row, f);
  check_launch(ctx, op);
}

// ---- reductions within the threads of one row ------------------------------------------------------
struct SumOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
};
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// The threads sharing a row: a power-of-two slice of a warp (kBlock false; blockDim = (width, rows per
// block)) or the whole block (kBlock true; blockDim.x a multiple of 32). reduce() returns the result to
// every thread of the group; all threads of the block must call it (no divergent early exits).
template <bool kBlock> struct RowGroup {
  float* shared;  // 32 floats (block mode)

  __device__ __forceinline__ int lane() const { return int(threadIdx.x); }
  __device__ __forceinline__ int width() const { return int(blockDim.x); }

  template <typename Op> __device__ float reduce(float v, Op op) const {
    if constexpr (!kBlock) {
#pragma unroll
      for (int o = 16; o > 0; o >>= 1)
        if (o < width()) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
      return v;
    } else {
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
      if (threadIdx.x % 32 == 0) shared[threadIdx.x / 32] = v;
      __syncthreads();
      v = shared[0];
      for (int w = 1; w < int(blockDim.x / 32); ++w) v = op(v, shared[w]);
      __syncthreads();  // `shared` is reused by the next reduction
      return v;
    }
  }
};

// ---- one normalization per row ----------------------------------------------------------------------
// Stats::compute(reduce, len) derives the row's statistics through reduce(f, op, init) = op-reduction of
// f(x) over the row (each call re-reads the row; rows are small enough to stay in L1/L2, so DRAM sees
// one read); Stats::apply(x) maps an element; then epi.template apply<kVec, kPacked>(row, col, v) adds
// per-column or per-row terms. Rows: `rows` of `len` elements `x_stride` apart, starting at
// x + rows_ix(row); out is contiguous [rows, len].
template <typename T, int kVec, bool kPacked, bool kBlock, typename Stats, typename Epi>
static __global__ void norm_rows_kernel(const T* x, StridedIndexer rows_ix, int64_t x_stride, int64_t rows,
                                        int64_t len, T* out, Stats stats, Epi epi) {
  __shared__ float shared[32];
  const RowGroup<kBlock> g{shared};
  Stats st = stats;
  const int64_t row = kBlock ? int64_t(blockIdx.x) : int64_t(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool live = row < rows;  // dead threads still join the reductions
  const T* xr = x + (live ? rows_ix(row) : 0);
  const int64_t packs = live ? len / kVec : 0;
  auto reduce = [&](auto f, auto op, float init) {
    float acc = init;
    for (int64_t p = g.lane(); p < packs; p += g.width()) {
      float v[kVec];
      load_vec<kVec, kPacked>(xr + p * kVec * x_stride, x_stride, v);
#pragma unroll
      for (int k = 0; k < kVec; ++k) acc = op(acc, f(v[k]));
    }
    return g.reduce(acc, op);
  };
  st.compute(reduce, len);
  for (int64_t p = g.lane(); p < packs; p += g.width()) {
    float v[kVec];
    load_vec<kVec, kPacked>(xr + p * kVec * x_stride, x_stride, v);
#pragma unroll
    for (int k = 0; k < kVec; ++k) v[k] = st.apply(v[k]);
    epi.template apply<kVec, kPacked>(row, p * kVec, v);
    store_vec<kVec, kPacked>(out + row * len + p * kVec, v);
  }
}

// Up to 256 packs a row: a slice of a warp per row (about two packs a lane, several rows a block);
// longer rows: a block per row with about four packs a thread.
template <typename T, int kVec, bool kPacked, typename Stats, typename Epi>
void launch_norm_rows_as(const Context& ctx, const T* x, const Rows& r, int64_t rows, T* out, const Stats& stats,
                         const Epi& epi, const char* op) {
  DITRUN_CHECK(rows < (int64_t(1) << 31), op, ": ", rows, " rows");
  const int64_t packs = r.len / kVec;
  cudaStream_t stream = ctx.cuda().stream;
  if (packs <= 256) {
    int width = 1;
    while (width < 32 && width * 2 < packs) width *= 2;
    const dim3 block{unsigned(width), unsigned(256 / width)};
    const unsigned grid = unsigned((rows + block.y - 1) / block.y);
    norm_rows_kernel<T, kVec, kPacked, false><<<grid, block, 0, stream>>>(x, r.outer, r.stride, rows, r.len, out, stats, epi);
  } else {
    const int threads = int(std::clamp<int64_t>((packs / 4 + 31) / 32 * 32, 64, 1024));
    norm_rows_kernel<T, kVec, kPacked, true><<<unsigned(rows), threads, 0, stream>>>(x, r.outer, r.stride, rows, r.len, out, stats, epi);
  }
  check_launch(ctx, op);
}

// Normalizes every row of x (rank >= 1, any strides) into out (contiguous, same shape). The wide
// variant needs unit-stride aligned rows and epi.packable(kWide); the narrow one (kNarrow elements a
// step; it must divide the row length) takes anything.
template <typename T, int kNarrow = 1, typename Stats, typename Epi>
void launch_norm_rows(const Context& ctx, const Tensor& x, const Tensor& out, const Stats& stats, const Epi& epi,
                      const char* op) {
  if (out.numel() == 0) return;
  const Rows r = last_dim_rows(x);
  const int64_t rows = x.numel() / r.len;
  const T* xp = static_cast<const T*>(x.raw_data());
  T* o = static_cast<T*>(out.raw_data());
  constexpr int kV = kWide<T>;
  if (packable(xp, r, kV) && aligned(o, 16) && epi.packable(kV))
    launch_norm_rows_as<T, kV, true>(ctx, xp, r, rows, o, stats, epi, op);
  else
    launch_norm_rows_as<T, kNarrow, false>(ctx, xp, r, rows, o, stats, epi, op);
}

// (x − mean)·rstd with the biased variance, both passes in f32 over the row.
struct LayerNormStats {
  float eps;
  float mean = 0.f, rstd = 0.f;
  template <typename Reduce> __device__ void compute(Reduce& reduce, int64_t len) {
    mean = reduce([](float v) { return v; }, SumOp{}, 0.f) / float(len);
    const float m = mean;
    const float var = reduce([m](float v) { return (v - m) * (v - m); }, SumOp{}, 0.f) / float(len);
    rstd = rsqrtf(var + eps);
  }
  __device__ __forceinline__ float apply(float v) const { return (v - mean) * rstd; }
};

// x / sqrt(mean(x²) + eps).
struct RmsNormStats {
  float eps;
  float rstd = 0.f;
  template <typename Reduce> __device__ void compute(Reduce& reduce, int64_t len) {
    rstd = rsqrtf(reduce([](float v) { return v * v; }, SumOp{}, 0.f) / float(len) + eps);
  }
  __device__ __forceinline__ float apply(float v) const { return v * rstd; }
};

// v *= w[col..], v += b[col..] (either may be null): per-column affine of layer_norm / rms_norm.
template <typename T> struct ColumnAffine {
  const T* w = nullptr;
  const T* b = nullptr;
  bool packable(int vec) const { return aligned(w, sizeof(T) * size_t(vec)) && aligned(b, sizeof(T) * size_t(vec)); }
  template <int kVec, bool kPacked> __device__ void apply(int64_t row, int64_t col, float (&v)[kVec]) const {
    float f[kVec];
    if (w) {
      load_vec<kVec, kPacked>(w + col, 1, f);
#pragma unroll
      for (int k = 0; k < kVec; ++k) v[k] *= f[k];
    }
    if (b) {
      load_vec<kVec, kPacked>(b + col, 1, f);
#pragma unroll
      for (int k = 0; k < kVec; ++k) v[k] += f[k];
    }
  }
};

// ---- rotary embedding ---------------------------------------------------------------------------------
// Rotates the interleaved pairs (2p, 2p+1) of v (columns [col, col + kVec), kVec even) by the angles of
// position `pos`: cos/sin are contiguous [L, half].
template <typename Tc> struct RopeTables {
  const Tc* cos = nullptr;
  const Tc* sin = nullptr;
  int64_t half = 0;
  bool packable(int vec) const {
    const size_t bytes = sizeof(Tc) * size_t(vec / 2);
    return half % (vec / 2) == 0 && aligned(cos, bytes) && aligned(sin, bytes);
  }
  template <int kVec, bool kPacked> __device__ void rotate(int64_t pos, int64_t col, float (&v)[kVec]) const {
    static_assert(kVec % 2 == 0, "RoPE works on pairs");
    float c[kVec / 2], s[kVec / 2];
    load_vec<kVec / 2, kPacked>(cos + pos * half + col / 2, 1, c);
    load_vec<kVec / 2, kPacked>(sin + pos * half + col / 2, 1, s);
#pragma unroll
    for (int q = 0; q < kVec / 2; ++q) {
      const float x0 = v[2 * q], x1 = v[2 * q + 1];
      v[2 * q] = x0 * c[q] - x1 * s[q];
      v[2 * q + 1] = x0 * s[q] + x1 * c[q];
    }
  }
};

// A float parameter in dtype `dtype`, contiguous (t itself when it already is); undefined stays undefined.
inline Tensor param_as(const Context& ctx, const Tensor& t, DType dtype) {
  return t.defined() ? rt::cast(ctx, t, dtype) : t;
}
template <typename T> const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.raw_data()) : nullptr;
}

}  // namespace rt::cuda
