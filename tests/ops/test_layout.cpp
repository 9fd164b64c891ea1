// concat, embedding and rope against references written from the definitions. concat and embedding
// are copies (exact); rope is one multiply-add per element (relative L2 ≤ 1e-6).
#include <cmath>
#include <vector>

#include "harness/naive.h"
#include "ops.h"

#include <catch2/catch.hpp>

using rt::Shape;
using rt::Tensor;

namespace {

const rt::Context& ctx() {
  static const rt::Context c(rt::ContextOptions{rt::Device::cpu(), 2});
  return c;
}

// A tensor of logical shape `shape` whose storage is laid out with its dims in reverse order (so
// every dim is strided), plus its values in row-major order of `shape`.
struct Strided {
  Tensor t;
  std::vector<double> v;
};

Strided reversed_layout(const Shape& shape, uint64_t seed) {
  const Shape rev(shape.rbegin(), shape.rend());
  const auto base = naive::uniform(rt::shape_numel(shape), seed);
  std::vector<int64_t> perm(shape.size());
  for (size_t d = 0; d < shape.size(); ++d) perm[d] = int64_t(shape.size() - 1 - d);
  Strided s{naive::tensor(base, rev).permute(perm), std::vector<double>(base.size())};
  for (int64_t i = 0; i < int64_t(base.size()); ++i) {
    const auto idx = naive::unlin(shape, i);
    s.v[size_t(i)] = base[size_t(naive::lin(rev, std::vector<int64_t>(idx.rbegin(), idx.rend())))];
  }
  return s;
}

}  // namespace

TEST_CASE("layout.concat dims 0, 1, last with strided inputs", "[layout]") {
  for (int64_t dim : {0, 1, 2, -1}) {
    INFO("dim " << dim);
    const int64_t d = dim < 0 ? dim + 3 : dim;
    const int64_t sizes[] = {2, 3, 1};
    std::vector<Tensor> xs;
    std::vector<Strided> parts;
    Shape out{4, 3, 5};
    out[size_t(d)] = 0;
    for (int i = 0; i < 3; ++i) {
      Shape s{4, 3, 5};
      s[size_t(d)] = sizes[i];
      out[size_t(d)] += sizes[i];
      parts.push_back(reversed_layout(s, 40 + uint64_t(i) + uint64_t(d) * 3));
      // The middle input is contiguous, the others strided, so both paths meet in one call.
      xs.push_back(i == 1 ? parts.back().t.contiguous() : parts.back().t);
    }
    const Tensor y = rt::concat(ctx(), xs, dim);
    REQUIRE(y.shape() == out);
    std::vector<double> want(size_t(rt::shape_numel(out)));
    for (int64_t i = 0; i < int64_t(want.size()); ++i) {
      auto idx = naive::unlin(out, i);
      int part = 0;
      while (idx[size_t(d)] >= sizes[part]) idx[size_t(d)] -= sizes[part++];
      Shape s{4, 3, 5};
      s[size_t(d)] = sizes[part];
      want[size_t(i)] = parts[size_t(part)].v[size_t(naive::lin(s, idx))];
    }
    CHECK(naive::max_abs(y, want) == 0.0);
  }
}

TEST_CASE("layout.concat sliced views and empty parts", "[layout]") {
  // Two windows of one [6, 8] base (offsets, row stride 8) and an empty slice, along the last dim.
  const auto base = naive::uniform(48, 50);
  const Tensor t = naive::tensor(base, {6, 8});
  const Tensor a = t.slice(0, 1, 4).slice(1, 0, 3), b = t.slice(0, 2, 5).slice(1, 5, 8),
               e = t.slice(0, 0, 3).slice(1, 2, 2);
  const Tensor y = rt::concat(ctx(), {a, e, b}, 1);
  REQUIRE(y.shape() == Shape{3, 6});
  std::vector<double> want(18);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 6; ++j)
      want[size_t(i * 6 + j)] = j < 3 ? base[size_t((i + 1) * 8 + j)] : base[size_t((i + 2) * 8 + 5 + j - 3)];
  CHECK(naive::max_abs(y, want) == 0.0);
  // A single input is a copy.
  CHECK(naive::max_abs(rt::concat(ctx(), {a}, 0), naive::read(a)) == 0.0);
}

TEST_CASE("layout.embedding", "[layout]") {
  const int64_t v = 7, d = 5;
  const auto table = naive::uniform(v * d, 51);
  const std::vector<int64_t> ids{3, 0, 6, 6, 1, 2, 0, 5};
  // Table stored transposed ([d, v]) and viewed as [v, d]; ids [2, 4] from a transposed [4, 2].
  std::vector<double> tt(size_t(v * d));
  for (int64_t r = 0; r < v; ++r)
    for (int64_t c = 0; c < d; ++c) tt[size_t(c * v + r)] = table[size_t(r * d + c)];
  const Tensor tables[] = {naive::tensor(table, {v, d}), naive::tensor(tt, {d, v}).transpose(0, 1)};
  std::vector<int64_t> ids_t(8);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 4; ++j) ids_t[size_t(j * 2 + i)] = ids[size_t(i * 4 + j)];
  const Tensor id_tensors[] = {Tensor::from_vector_i64(ids, {2, 4}),
                               Tensor::from_vector_i64(ids_t, {4, 2}).transpose(0, 1)};
  for (const Tensor& tab : tables)
    for (const Tensor& tid : id_tensors) {
      const Tensor y = rt::embedding(ctx(), tid, tab);
      REQUIRE(y.shape() == Shape{2, 4, d});
      std::vector<double> want(size_t(8 * d));
      for (int64_t i = 0; i < 8; ++i)
        for (int64_t c = 0; c < d; ++c) want[size_t(i * d + c)] = table[size_t(ids[size_t(i)] * d + c)];
      CHECK(naive::max_abs(y, want) == 0.0);
    }
}

TEST_CASE("layout.rope vs the formula", "[layout]") {
  // L = 131 puts B·L past the kernel's parallel grain; cos is also passed as a transposed view.
  for (int64_t l : {5, 131}) {
    INFO("L " << l);
    const int64_t b = 2, h = 3, dh = 6, half = dh / 2;
    // x [B, L, H, D] as the transpose(1, 2) of a [B, H, L, D] tensor (the layout after a head split).
    const auto xb = naive::uniform(b * h * l * dh, 52, -2, 2);
    const Tensor tx = naive::tensor(xb, {b, h, l, dh}).transpose(1, 2);
    std::vector<double> cs(size_t(l * half)), sn(size_t(l * half));
    for (int64_t p = 0; p < l; ++p)
      for (int64_t q = 0; q < half; ++q) {
        const double ang = double(float(p * std::pow(10000.0, -2.0 * q / dh)));
        cs[size_t(p * half + q)] = double(float(std::cos(ang)));
        sn[size_t(p * half + q)] = double(float(std::sin(ang)));
      }
    std::vector<double> cs_t(cs.size());
    for (int64_t p = 0; p < l; ++p)
      for (int64_t q = 0; q < half; ++q) cs_t[size_t(q * l + p)] = cs[size_t(p * half + q)];
    const Tensor tcos = naive::tensor(cs_t, {half, l}).transpose(0, 1);
    const Tensor y = rt::rope(ctx(), tx, tcos, naive::tensor(sn, {l, half}));
    REQUIRE(y.shape() == Shape{b, l, h, dh});
    std::vector<double> want(size_t(b * l * h * dh));
    for (int64_t bi = 0; bi < b; ++bi)
      for (int64_t p = 0; p < l; ++p)
        for (int64_t hi = 0; hi < h; ++hi)
          for (int64_t q = 0; q < half; ++q) {
            const double x0 = xb[size_t(naive::lin({b, h, l, dh}, {bi, hi, p, 2 * q}))];
            const double x1 = xb[size_t(naive::lin({b, h, l, dh}, {bi, hi, p, 2 * q + 1}))];
            const double c = cs[size_t(p * half + q)], s = sn[size_t(p * half + q)];
            want[size_t(naive::lin({b, l, h, dh}, {bi, p, hi, 2 * q}))] = x0 * c - x1 * s;
            want[size_t(naive::lin({b, l, h, dh}, {bi, p, hi, 2 * q + 1}))] = x0 * s + x1 * c;
          }
    CHECK(naive::rel_l2(y, want) <= 1e-6);
    // Position 0 has angle 0: identity.
    for (int64_t hi = 0; hi < h; ++hi)
      for (int64_t j = 0; j < dh; ++j) CHECK(y.at({1, 0, hi, j}) == tx.at({1, 0, hi, j}));
  }
}
