// embedding (row gather by i64 ids on the device) and rope (interleaved pairs, as cpu/layout.cpp), both
// over any strides, with 16-byte packs where rows are contiguous and aligned.
#include "cuda/rows.cuh"

namespace rt::cuda {

// Row r of the output is table row ids[r]; an id outside [0, vocab) gives a row of NaN (the CPU CHECKs
// instead; a device kernel cannot stop the program, and NaN is what the next checks notice).
template <typename T> struct EmbeddingRows {
  T* out;
  const int64_t* ids;
  StridedIndexer ids_ix;
  const T* table;
  int64_t row_stride, col_stride, vocab, len;
  template <int kVec, bool kPacked> __device__ void pack(int64_t row, int64_t col) const {
    const int64_t id = ids[ids_ix(row)];
    float v[kVec];
    if (id >= 0 && id < vocab) {
      load_vec<kVec, kPacked>(table + id * row_stride + col * col_stride, col_stride, v);
    } else {
#pragma unroll
      for (int k = 0; k < kVec; ++k) v[k] = __int_as_float(0x7fc00000);
    }
    store_vec<kVec, kPacked>(out + row * len + col, v);
  }
};

Tensor embedding(const Context& ctx, const Tensor& ids, const Tensor& table) {
  Shape shape = ids.shape();
  shape.push_back(table.size(1));
  Tensor out = cuda::empty(ctx, shape, table.dtype());
  if (out.numel() == 0) return out;
  const StridedIndexer ids_ix = collapse<1>(ids.shape(), {ids.strides()})[0];
  DITRUN_DISPATCH_FLOAT(table.dtype(), T, [&] {
    const EmbeddingRows<T> f{static_cast<T*>(out.raw_data()), static_cast<const int64_t*>(ids.raw_data()), ids_ix,
                             static_cast<const T*>(table.raw_data()), table.strides()[0], table.strides()[1], table.size(0),
                             table.size(1)};
    constexpr int kV = kWide<T>;
    if (f.col_stride == 1 && f.len % kV == 0 && f.row_stride % kV == 0 && aligned(f.table, 16) && aligned(f.out, 16))
      launch_pack_rows<kV, true>(ctx, ids.numel(), f.len, f, "embedding");
    else
      launch_pack_rows<1, false>(ctx, ids.numel(), f.len, f, "embedding");
  });
  return out;
}

// Rows are the (b, l, h) vectors of x; position l = (row / heads) % seq.
template <typename T, typename Tc> struct RopeRows {
  T* out;
  const T* x;
  StridedIndexer rows_ix;
  int64_t stride, len, heads, seq;
  RopeTables<Tc> tables;
  template <int kVec, bool kPacked> __device__ void pack(int64_t row, int64_t col) const {
    float v[kVec];
    load_vec<kVec, kPacked>(x + rows_ix(row) + col * stride, stride, v);
    tables.template rotate<kVec, kPacked>((row / heads) % seq, col, v);
    store_vec<kVec, kPacked>(out + row * len + col, v);
  }
};

Tensor rope(const Context& ctx, const Tensor& x, const Tensor& cos, const Tensor& sin) {
  Tensor out = cuda::empty(ctx, x.shape(), x.dtype());
  if (out.numel() == 0) return out;
  const Tensor c = param_as(ctx, cos, cos.dtype()), s = param_as(ctx, sin, cos.dtype());
  const Rows r = last_dim_rows(x);
  const int64_t rows = x.numel() / r.len;
  DITRUN_DISPATCH_FLOAT(x.dtype(), T, [&] {
    DITRUN_DISPATCH_FLOAT(c.dtype(), Tc, [&] {
      const RopeRows<T, Tc> f{static_cast<T*>(out.raw_data()), static_cast<const T*>(x.raw_data()), r.outer, r.stride,
                              r.len, x.size(2), x.size(1),
                              RopeTables<Tc>{ptr_or_null<Tc>(c), ptr_or_null<Tc>(s), r.len / 2}};
      constexpr int kV = kWide<T>;
      if (packable(f.x, r, kV) && aligned(f.out, 16) && f.tables.packable(kV))
        launch_pack_rows<kV, true>(ctx, rows, r.len, f, "rope");
      else
        launch_pack_rows<2, false>(ctx, rows, r.len, f, "rope");
    });
  });
  return out;
}

}  // namespace rt::cuda
