// binary (Add/Sub/Mul over views already broadcast to the output shape), the unary activations and
// affine; the formulas are cpu/elementwise.cpp's, computed in f32. Inputs are walked as collapsed rows
// (rows.cuh), so a contiguous tensor or a bias broadcast over rows costs one or two divisions per pack.
#include <cmath>

#include "cuda/rows.cuh"

namespace rt::cuda {

__device__ __forceinline__ float apply_binary(cpu::BinaryOp op, float a, float b) {
  switch (op) {
    case cpu::BinaryOp::Add: return a + b;
    case cpu::BinaryOp::Sub: return a - b;
    case cpu::BinaryOp::Mul: return a * b;
  }
  return 0.f;
}

struct UnaryFn {
  cpu::UnaryOp op;
  __device__ __forceinline__ float operator()(float x) const {
    switch (op) {
      case cpu::UnaryOp::Silu: return x / (1.f + expf(-x));
      case cpu::UnaryOp::GeluTanh: {
        const float k = 0.7978845608028654f;  // sqrt(2/pi)
        return 0.5f * x * (1.f + tanhf(k * (x + 0.044715f * x * x * x)));
      }
      case cpu::UnaryOp::GeluErf: return 0.5f * x * (1.f + erff(x * 0.7071067811865476f));
      case cpu::UnaryOp::QuickGelu: return x / (1.f + expf(-1.702f * x));
    }
    return 0.f;
  }
};

struct AffineFn {
  float s, t;
  __device__ __forceinline__ float operator()(float x) const { return x * s + t; }
};

// An operand's kVec values: a pack where its inner stride is 1 and the launcher chose packs, else
// strided elements (stride 0 repeats one value: a broadcast along the row).
template <int kVec, bool kPacked, typename T>
__device__ __forceinline__ void load_operand(const T* p, int64_t stride, float (&f)[kVec]) {
  if (kPacked && stride == 1)
    load_vec<kVec, true>(p, 1, f);
  else
    load_vec<kVec, false>(p, stride, f);
}

template <typename Ta, typename Tb> struct BinaryRows {
  Ta* out;
  const Ta* a;
  const Tb* b;
  StridedIndexer ia, ib;
  int64_t sa, sb, len;
  cpu::BinaryOp op;
  template <int kVec, bool kPacked> __device__ void pack(int64_t row, int64_t col) const {
    float va[kVec], vb[kVec];
    load_operand<kVec, kPacked>(a + ia(row) + col * sa, sa, va);
    load_operand<kVec, kPacked>(b + ib(row) + col * sb, sb, vb);
#pragma unroll
    for (int k = 0; k < kVec; ++k) va[k] = apply_binary(op, va[k], vb[k]);
    store_vec<kVec, kPacked>(out + row * len + col, va);
  }
};

template <typename T, typename Fn> struct MapRows {
  T* out;
  const T* x;
  StridedIndexer ix;
  int64_t sx, len;
  Fn fn;
  template <int kVec, bool kPacked> __device__ void pack(int64_t row, int64_t col) const {
    float v[kVec];
    load_operand<kVec, kPacked>(x + ix(row) + col * sx, sx, v);
#pragma unroll
    for (int k = 0; k < kVec; ++k) v[k] = fn(v[k]);
    store_vec<kVec, kPacked>(out + row * len + col, v);
  }
};

Tensor binary(const Context& ctx, cpu::BinaryOp op, const Tensor& a, const Tensor& b) {
  DITRUN_CHECK(a.shape() == b.shape(), "cuda::binary: ", a.str(), " and ", b.str(), " must be broadcast views");
  Tensor out = cuda::empty(ctx, a.shape(), a.dtype());
  if (out.numel() == 0) return out;
  const auto ix = collapse<2>(a.shape(), {a.strides(), b.strides()});
  const Rows ra = split_rows(ix[0]), rb = split_rows(ix[1]);
  const int64_t rows = out.numel() / ra.len;
  DITRUN_DISPATCH_FLOAT(a.dtype(), Ta, [&] {
    DITRUN_DISPATCH_FLOAT(b.dtype(), Tb, [&] {
      const BinaryRows<Ta, Tb> f{static_cast<Ta*>(out.raw_data()), static_cast<const Ta*>(a.raw_data()),
                                 static_cast<const Tb*>(b.raw_data()), ra.outer, rb.outer, ra.stride, rb.stride, ra.len, op};
      constexpr int kV = kWide<Ta>;
      if (ra.len % kV == 0 && packable(f.a, ra, kV, true) && packable(f.b, rb, kV, true) && aligned(f.out, 16))
        launch_pack_rows<kV, true>(ctx, rows, ra.len, f, "binary");
      else
        launch_pack_rows<1, false>(ctx, rows, ra.len, f, "binary");
    });
  });
  return out;
}

template <typename Fn> static Tensor map(const Context& ctx, const Tensor& x, Fn fn, const char* op) {
  Tensor out = cuda::empty(ctx, x.shape(), x.dtype());
  if (out.numel() == 0) return out;
  const Rows r = split_rows(collapse<1>(x.shape(), {x.strides()})[0]);
  const int64_t rows = out.numel() / r.len;
  DITRUN_DISPATCH_FLOAT(x.dtype(), T, [&] {
    const MapRows<T, Fn> f{static_cast<T*>(out.raw_data()), static_cast<const T*>(x.raw_data()), r.outer, r.stride, r.len, fn};
    constexpr int kV = kWide<T>;
    if (packable(f.x, r, kV) && aligned(f.out, 16))
      launch_pack_rows<kV, true>(ctx, rows, r.len, f, op);
    else
      launch_pack_rows<1, false>(ctx, rows, r.len, f, op);
  });
  return out;
}

Tensor unary(const Context& ctx, cpu::UnaryOp op, const Tensor& x) { return map(ctx, x, UnaryFn{op}, "unary"); }

Tensor affine(const Context& ctx, const Tensor& x, float s, float t) { return map(ctx, x, AffineFn{s, t}, "affine"); }

}  // namespace rt::cuda
