// Building blocks for naive double-precision references in op tests: deterministic inputs, row-major
// index arithmetic written out by hand (so a reference never reuses the strided machinery under test),
// and error measures against a std::vector<double> reference.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "tensor.h"

namespace naive {

// Deterministic values in [lo, hi) from a 64-bit LCG (Knuth's MMIX constants); `seed` picks the stream.
inline std::vector<double> uniform(int64_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1442695040888963407ull;
  std::vector<double> v(size_t(n > 0 ? n : 0));
  for (auto& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const double u = double(s >> 11) * (1.0 / 9007199254740992.0);  // 53 random bits in [0, 1)
    // Rounded to float here so the double reference sees exactly the values the tensor holds.
    x = double(float(lo + (hi - lo) * u));
  }
  return v;
}

// A contiguous f32 tensor holding `v` (already float-exact) in row-major order.
inline rt::Tensor tensor(const std::vector<double>& v, const rt::Shape& shape) {
  std::vector<float> f(v.begin(), v.end());
  return rt::Tensor::from_vector(f, shape);
}

// Row-major linear index of `idx` in `shape`.
inline int64_t lin(const rt::Shape& shape, const std::vector<int64_t>& idx) {
  int64_t off = 0;
  for (size_t d = 0; d < shape.size(); ++d) off = off * shape[d] + idx[d];
  return off;
}

// Inverse of lin(): the multi-index of row-major position `i`.
inline std::vector<int64_t> unlin(const rt::Shape& shape, int64_t i) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = i % shape[d];
    i /= shape[d];
  }
  return idx;
}

// Reads every element of `t` through Tensor::at (independent of to_vector's odometer), row-major.
inline std::vector<double> read(const rt::Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.at(unlin(t.shape(), i));
  return v;
}

// ||got - want|| / ||want|| in double (the parity rule); NaN when any element of `got` is NaN.
inline double rel_l2(const rt::Tensor& got, const std::vector<double>& want) {
  const std::vector<double> g = read(got);
  if (g.size() != want.size()) return INFINITY;
  double num = 0, den = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    num += (g[i] - want[i]) * (g[i] - want[i]);
    den += want[i] * want[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// Largest |got - want| over all elements.
inline double max_abs(const rt::Tensor& got, const std::vector<double>& want) {
  const std::vector<double> g = read(got);
  double m = 0;
  for (size_t i = 0; i < g.size() && i < want.size(); ++i) m = std::fmax(m, std::fabs(g[i] - want[i]));
  return m;
}

inline bool all_finite(const rt::Tensor& t) {
  for (double x : read(t))
    if (!std::isfinite(x)) return false;
  return true;
}

}  // namespace naive
