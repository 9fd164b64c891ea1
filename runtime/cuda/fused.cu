// The Flux blocks' fused ops, one pass each over their rows (see ops.h for the chains they replace):
// layer_norm_modulate and qk_norm_rope are normalizations with an epilogue (rows.cuh's norm_rows_kernel),
// gated_residual is a pack-wise elementwise pass. Intermediate values stay in f32 registers, so the
// 16-bit paths round once, on output.
#include "cuda/rows.cuh"

namespace rt::cuda {

// A [B, C] per-sample vector with unit inner stride in `dtype` (t itself when it already is, e.g. a chunk
// of a [B, k·C] modulation output), and the distance between its batch rows.
struct PerSample {
  Tensor t;
  int64_t stride = 0;
};
static PerSample per_sample(const Context& ctx, const Tensor& t, DType dtype) {
  PerSample p{t.dtype() == dtype && t.strides()[1] == 1 ? t : rt::cast(ctx, t, dtype)};
  p.stride = p.t.size(0) == 1 ? 0 : p.t.strides()[0];
  return p;
}

template <typename T> bool packable(const T* p, int64_t stride, int vec) {
  return aligned(p, sizeof(T) * size_t(vec)) && stride % vec == 0;
}

// v·(1 + scale) + shift, with shift/scale rows picked by the batch index of the row (row / seq).
template <typename T> struct Modulate {
  const T* shift;
  const T* scale;
  int64_t shift_stride, scale_stride, seq;
  bool packable(int vec) const {
    return cuda::packable(shift, shift_stride, vec) && cuda::packable(scale, scale_stride, vec);
  }
  template <int kVec, bool kPacked> __device__ void apply(int64_t row, int64_t col, float (&v)[kVec]) const {
    const int64_t b = row / seq;
    float sh[kVec], sc[kVec];
    load_vec<kVec, kPacked>(shift + b * shift_stride + col, 1, sh);
    load_vec<kVec, kPacked>(scale + b * scale_stride + col, 1, sc);
#pragma unroll
    for (int k = 0; k < kVec; ++k) v[k] = v[k] * (1.f + sc[k]) + sh[k];
  }
};

Tensor layer_norm_modulate(const Context& ctx, const Tensor& x, const Tensor& shift, const Tensor& scale, float eps) {
  Tensor out = cuda::empty(ctx, x.shape(), x.dtype());
  if (out.numel() == 0) return out;
  const PerSample sh = per_sample(ctx, shift, x.dtype()), sc = per_sample(ctx, scale, x.dtype());
  DITRUN_DISPATCH_FLOAT(x.dtype(), T, [&] {
    const Modulate<T> epi{ptr_or_null<T>(sh.t), ptr_or_null<T>(sc.t), sh.stride, sc.stride, x.size(1)};
    launch_norm_rows<T>(ctx, x, out, LayerNormStats{eps}, epi, "layer_norm_modulate");
  });
  return out;
}

// Rows are the B·L token vectors; x and y are read through their own row indexers.
template <typename T> struct GatedResidualRows {
  T* out;
  const T* x;
  const T* y;
  const T* gate;
  StridedIndexer x_rows, y_rows;
  int64_t x_stride, y_stride, gate_stride, seq, len;
  template <int kVec, bool kPacked> __device__ void pack(int64_t row, int64_t col) const {
    float vx[kVec], vy[kVec], g[kVec];
    load_vec<kVec, kPacked>(x + x_rows(row) + col * x_stride, x_stride, vx);
    load_vec<kVec, kPacked>(y + y_rows(row) + col * y_stride, y_stride, vy);
    load_vec<kVec, kPacked>(gate + (row / seq) * gate_stride + col, 1, g);
#pragma unroll
    for (int k = 0; k < kVec; ++k) vx[k] += g[k] * vy[k];
    store_vec<kVec, kPacked>(out + row * len + col, vx);
  }
};

Tensor gated_residual(const Context& ctx, const Tensor& x, const Tensor& gate, const Tensor& y_in) {
  Tensor out = cuda::empty(ctx, x.shape(), x.dtype());
  if (out.numel() == 0) return out;
  const PerSample g = per_sample(ctx, gate, x.dtype());
  const Tensor y = y_in.dtype() == x.dtype() ? y_in : rt::cast(ctx, y_in, x.dtype());
  const Rows rx = last_dim_rows(x), ry = last_dim_rows(y);
  const int64_t rows = x.numel() / rx.len;
  DITRUN_DISPATCH_FLOAT(x.dtype(), T, [&] {
    const GatedResidualRows<T> f{static_cast<T*>(out.raw_data()), static_cast<const T*>(x.raw_data()),
                                 static_cast<const T*>(y.raw_data()), ptr_or_null<T>(g.t), rx.outer, ry.outer,
                                 rx.stride, ry.stride, g.stride, x.size(1), rx.len};
    constexpr int kV = kWide<T>;
    if (packable(f.x, rx, kV) && packable(f.y, ry, kV) && packable(f.gate, f.gate_stride, kV) && aligned(f.out, 16))
      launch_pack_rows<kV, true>(ctx, rows, rx.len, f, "gated_residual");
    else
      launch_pack_rows<1, false>(ctx, rows, rx.len, f, "gated_residual");
  });
  return out;
}

// rms_norm's weight, then RoPE at position (row / heads) % seq.
template <typename T, typename Tc> struct WeightedRope {
  ColumnAffine<T> weight;
  RopeTables<Tc> tables;
  int64_t heads, seq;
  bool packable(int vec) const { return weight.packable(vec) && tables.packable(vec); }
  template <int kVec, bool kPacked> __device__ void apply(int64_t row, int64_t col, float (&v)[kVec]) const {
    weight.template apply<kVec, kPacked>(row, col, v);
    tables.template rotate<kVec, kPacked>((row / heads) % seq, col, v);
  }
};

Tensor qk_norm_rope(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& cos, const Tensor& sin,
                    float eps) {
  Tensor out = cuda::empty(ctx, x.shape(), x.dtype());
  if (out.numel() == 0) return out;
  const Tensor w = param_as(ctx, weight, x.dtype());
  const Tensor c = param_as(ctx, cos, cos.dtype()), s = param_as(ctx, sin, cos.dtype());
  DITRUN_DISPATCH_FLOAT(x.dtype(), T, [&] {
    DITRUN_DISPATCH_FLOAT(c.dtype(), Tc, [&] {
      const WeightedRope<T, Tc> epi{ColumnAffine<T>{ptr_or_null<T>(w), nullptr},
                                    RopeTables<Tc>{ptr_or_null<Tc>(c), ptr_or_null<Tc>(s), x.size(3) / 2}, x.size(2),
                                    x.size(1)};
      // The narrow variant steps by pairs, which RoPE needs in one thread.
      launch_norm_rows<T, 2>(ctx, x, out, RmsNormStats{eps}, epi, "qk_norm_rope");
    });
  });
  return out;
}

}  // namespace rt::cuda
