// Typed conversion loops (one per stored/target dtype pair, so the compiler can vectorize them) and the
// split of a large range over threads. Element loads go through memcpy: a tensor's data offset in a
// safetensors file need not be a multiple of its element size.
#include "weights/convert.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "base/check.h"

namespace weights {

using rt::DType;
using Byte = unsigned char;

template <DType S>
static inline float load_as_f32(const Byte* p, int64_t i) {
  if constexpr (S == DType::F32) {
    float v;
    std::memcpy(&v, p + 4 * i, 4);
    return v;
  } else if constexpr (S == DType::BF16 || S == DType::F16) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return S == DType::BF16 ? rt::bf16_to_f32(h) : rt::f16_to_f32(h);
  } else if constexpr (S == DType::F8E4M3) {
    return rt::f8e4m3_to_f32(p[i]);
  } else {
    int64_t v;
    std::memcpy(&v, p + 8 * i, 8);
    return float(v);
  }
}

template <DType D>
static inline void store_f32(Byte* p, int64_t i, float v) {
  if constexpr (D == DType::F32) {
    std::memcpy(p + 4 * i, &v, 4);
  } else {
    const uint16_t h = D == DType::BF16 ? rt::f32_to_bf16(v) : rt::f32_to_f16(v);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

template <DType S, DType D>
static void convert_n(const Byte* src, Byte* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) store_f32<D>(dst, i, load_as_f32<S>(src, i));
}

template <DType D>
static void convert_to(DType s, const Byte* src, Byte* dst, int64_t n) {
  switch (s) {
    case DType::F32: return convert_n<DType::F32, D>(src, dst, n);
    case DType::BF16: return convert_n<DType::BF16, D>(src, dst, n);
    case DType::F16: return convert_n<DType::F16, D>(src, dst, n);
    case DType::F8E4M3: return convert_n<DType::F8E4M3, D>(src, dst, n);
    case DType::I64: return convert_n<DType::I64, D>(src, dst, n);
  }
  CHECK(false, "convert_range: unknown stored dtype ", int(s));
}

// n elements of one piece from element `first` on.
static void convert_run(const Piece& p, int64_t first, int64_t n, DType d, Byte* dst) {
  const Byte* src = static_cast<const Byte*>(p.data) + size_t(first) * rt::dtype_size(p.dtype);
  if (p.dtype == d) {
    std::memcpy(dst, src, size_t(n) * rt::dtype_size(d));
    return;
  }
  switch (d) {
    case DType::F32: return convert_to<DType::F32>(p.dtype, src, dst, n);
    case DType::BF16: return convert_to<DType::BF16>(p.dtype, src, dst, n);
    case DType::F16: return convert_to<DType::F16>(p.dtype, src, dst, n);
    default: CHECK(false, "convert_range: cannot convert ", rt::dtype_name(p.dtype), " to ", rt::dtype_name(d));
  }
}

static void convert_serial(const std::vector<Piece>& pieces, DType d, Byte* dst, int64_t begin, int64_t end) {
  int64_t start = 0;  // element index of the current piece's first element
  for (const Piece& p : pieces) {
    const int64_t lo = std::max(begin, start), hi = std::min(end, start + p.numel);
    if (lo < hi) {
      convert_run(p, lo - start, hi - lo, d, dst);
      dst += size_t(hi - lo) * rt::dtype_size(d);
    }
    start += p.numel;
    if (start >= end) break;
  }
}

int64_t pieces_numel(const std::vector<Piece>& pieces) {
  int64_t n = 0;
  for (const Piece& p : pieces) n += p.numel;
  return n;
}

// Below this many destination bytes per thread a new thread costs more than it saves.
static constexpr size_t kBytesPerThread = 4u << 20;

void convert_range(const std::vector<Piece>& pieces, DType dst_dtype, void* dst, int64_t begin, int64_t end, int threads) {
  CHECK(0 <= begin && begin <= end && end <= pieces_numel(pieces), "convert_range: [", begin, ", ", end, ") outside ",
        pieces_numel(pieces), " elements");
  const int64_t n = end - begin;
  const size_t es = rt::dtype_size(dst_dtype);
  const int64_t workers = std::clamp<int64_t>(int64_t(size_t(n) * es / kBytesPerThread), 1, std::max(1, threads));
  Byte* out = static_cast<Byte*>(dst);
  if (workers == 1) {
    convert_serial(pieces, dst_dtype, out, begin, end);
    return;
  }
  // Chunks of whole 4 KiB pages of the destination, so no two threads write one cache line.
  const int64_t align = int64_t(4096 / es);
  const int64_t chunk = ((n + workers - 1) / workers + align - 1) / align * align;
  std::vector<std::thread> pool;
  for (int64_t b = begin + chunk; b < end; b += chunk) {
    const int64_t e = std::min(end, b + chunk);
    pool.emplace_back([&pieces, dst_dtype, out, begin, b, e, es] {
      convert_serial(pieces, dst_dtype, out + size_t(b - begin) * es, b, e);
    });
  }
  convert_serial(pieces, dst_dtype, out, begin, std::min(end, begin + chunk));
  for (auto& t : pool) t.join();
}

}  // namespace weights
