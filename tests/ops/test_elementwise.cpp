// add/sub/mul (numpy broadcasting, strided inputs), affine and the activations against double
// references written from the definitions. Elementwise ops are one float rounding from exact, so
// relative L2 must be ≤ 1e-6.
#include <cmath>
#include <functional>
#include <vector>

#include "harness/naive.h"
#include "ops.h"

#include <catch2/catch.hpp>

using rt::Shape;
using rt::Tensor;

namespace {

constexpr double kElementwiseTol = 1e-6;

const rt::Context& ctx() {
  static const rt::Context c(rt::ContextOptions{rt::Device::cpu(), 2});
  return c;
}

// Value of a broadcast operand at output index `idx` (operand right-aligned with the output).
double bcast_at(const std::vector<double>& v, const Shape& shape, const std::vector<int64_t>& idx) {
  std::vector<int64_t> src(shape.size());
  const size_t lead = idx.size() - shape.size();
  for (size_t d = 0; d < shape.size(); ++d) src[d] = shape[d] == 1 ? 0 : idx[lead + d];
  return v[size_t(naive::lin(shape, src))];
}

std::vector<double> binary_ref(const std::vector<double>& a, const Shape& sa, const std::vector<double>& b,
                               const Shape& sb, const Shape& out, const std::function<double(double, double)>& f) {
  std::vector<double> r(size_t(rt::shape_numel(out)));
  for (int64_t i = 0; i < int64_t(r.size()); ++i) {
    const auto idx = naive::unlin(out, i);
    r[size_t(i)] = f(bcast_at(a, sa, idx), bcast_at(b, sb, idx));
  }
  return r;
}

void check_all_binary(const Tensor& ta, const std::vector<double>& a, const Shape& sa, const Tensor& tb,
                      const std::vector<double>& b, const Shape& sb, const Shape& out) {
  const Tensor s = rt::add(ctx(), ta, tb), d = rt::sub(ctx(), ta, tb), m = rt::mul(ctx(), ta, tb);
  REQUIRE(s.shape() == out);
  REQUIRE(d.shape() == out);
  REQUIRE(m.shape() == out);
  CHECK(naive::rel_l2(s, binary_ref(a, sa, b, sb, out, [](double x, double y) { return x + y; })) <= kElementwiseTol);
  CHECK(naive::rel_l2(d, binary_ref(a, sa, b, sb, out, [](double x, double y) { return x - y; })) <= kElementwiseTol);
  CHECK(naive::rel_l2(m, binary_ref(a, sa, b, sb, out, [](double x, double y) { return x * y; })) <= kElementwiseTol);
}

}  // namespace

TEST_CASE("elementwise.binary broadcast [2,1,4] with [3,1]", "[elementwise]") {
  const Shape sa{2, 1, 4}, sb{3, 1};
  const auto a = naive::uniform(8, 1), b = naive::uniform(3, 2);
  check_all_binary(naive::tensor(a, sa), a, sa, naive::tensor(b, sb), b, sb, {2, 3, 4});
  // Operand order swapped: the output shape is symmetric, sub is not.
  check_all_binary(naive::tensor(b, sb), b, sb, naive::tensor(a, sa), a, sa, {2, 3, 4});
}

TEST_CASE("elementwise.binary broadcast scalar-ish [1]", "[elementwise]") {
  const Shape sa{2, 3, 5}, sb{1};
  const auto a = naive::uniform(30, 3), b = naive::uniform(1, 4);
  check_all_binary(naive::tensor(a, sa), a, sa, naive::tensor(b, sb), b, sb, sa);
  check_all_binary(naive::tensor(b, sb), b, sb, naive::tensor(a, sa), a, sa, sa);
  // Same shapes, no broadcasting, odd inner size.
  const auto c = naive::uniform(30, 5);
  check_all_binary(naive::tensor(a, sa), a, sa, naive::tensor(c, sa), c, sa, sa);
  // Rank-0 with rank-0.
  const Tensor r = rt::mul(ctx(), Tensor::from_vector({3.f}, {}), Tensor::from_vector({-2.5f}, {}));
  CHECK(r.shape() == Shape{});
  CHECK(r.to_vector() == std::vector<float>{-7.5f});
}

TEST_CASE("elementwise.binary strided inputs", "[elementwise]") {
  // a: transposed view of a [5, 3] base -> logical [3, 5]; b: a [3, 5] window (offset, row stride 7)
  // of a [4, 7] base.
  const auto abase = naive::uniform(15, 6), bbase = naive::uniform(28, 7);
  const Tensor ta = naive::tensor(abase, {5, 3}).transpose(0, 1);
  const Tensor tb = naive::tensor(bbase, {4, 7}).slice(0, 1, 4).slice(1, 2, 7);
  std::vector<double> a(15), b(15);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 5; ++j) {
      a[size_t(i * 5 + j)] = abase[size_t(j * 3 + i)];
      b[size_t(i * 5 + j)] = bbase[size_t((i + 1) * 7 + (j + 2))];
    }
  check_all_binary(ta, a, {3, 5}, tb, b, {3, 5}, {3, 5});
  // A strided view broadcast against a strided column: b column [3, 1] taken from the window.
  const Tensor tcol = tb.slice(1, 4, 5);
  std::vector<double> col(3);
  for (int64_t i = 0; i < 3; ++i) col[size_t(i)] = b[size_t(i * 5 + 4)];
  check_all_binary(ta, a, {3, 5}, tcol, col, {3, 1}, {3, 5});
  // Broadcast along the innermost dim with a stride-0 operand from expand.
  check_all_binary(ta.unsqueeze(0), a, {1, 3, 5}, tcol.unsqueeze(0).expand({2, 3, 1}), col, {3, 1}, {2, 3, 5});
}

TEST_CASE("elementwise.affine", "[elementwise]") {
  const auto base = naive::uniform(4 * 6, 8, -3, 3);
  const Tensor x = naive::tensor(base, {4, 6}).transpose(0, 1).slice(0, 1, 5);  // [4, 4], strided
  const Tensor y = rt::affine(ctx(), x, 1.75f, -0.5f);
  REQUIRE(y.shape() == Shape{4, 4});
  std::vector<double> want(16);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 4; ++j) want[size_t(i * 4 + j)] = base[size_t(j * 6 + (i + 1))] * 1.75 - 0.5;
  CHECK(naive::rel_l2(y, want) <= kElementwiseTol);
}

namespace {

struct Activation {
  const char* name;
  Tensor (*op)(const rt::Context&, const Tensor&);
  double (*ref)(double);
};

const Activation kActivations[] = {
    {"silu", rt::silu, [](double x) { return x / (1.0 + std::exp(-x)); }},
    {"gelu_tanh", rt::gelu_tanh,
     [](double x) {
       return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / std::acos(-1.0)) * (x + 0.044715 * x * x * x)));
     }},
    {"gelu_erf", rt::gelu_erf, [](double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }},
    {"quick_gelu", rt::quick_gelu, [](double x) { return x / (1.0 + std::exp(-1.702 * x)); }},
};

}  // namespace

TEST_CASE("elementwise.activations vs std math", "[elementwise]") {
  // -12..12 in 1/16 steps, plus tiny, huge and signed-zero inputs; odd count.
  std::vector<double> xs;
  for (int i = -192; i <= 192; ++i) xs.push_back(i / 16.0);
  for (double x : {1e-7, -1e-7, 3e-4, -3e-4, 0.3333, -2.7182, 30.0, -30.0, 88.0, -88.0, 100.0, -100.0, -0.0})
    xs.push_back(double(float(x)));
  const Tensor x = naive::tensor(xs, {int64_t(xs.size())});
  for (const Activation& a : kActivations) {
    INFO(a.name);
    const Tensor y = a.op(ctx(), x);
    REQUIRE(y.shape() == x.shape());
    REQUIRE(naive::all_finite(y));
    const std::vector<double> got = naive::read(y);
    std::vector<double> want(xs.size());
    for (size_t i = 0; i < xs.size(); ++i) {
      want[i] = a.ref(xs[i]);
      // Per element: 1e-6 relative, plus an absolute floor of 1e-7·max(1,|x|). The floor is needed
      // because for negative x the float32 kernels (like torch's) compute 0.5x(1+tanh/erf) with
      // 1 + (≈-1), losing the relative accuracy of a tail value that is itself < 1e-7·|x|.
      const double tol = 1e-6 * std::fabs(want[i]) + 1e-7 * std::fmax(1.0, std::fabs(xs[i]));
      if (!(std::fabs(got[i] - want[i]) <= tol))
        FAIL_CHECK(a.name << "(" << xs[i] << ") = " << got[i] << ", want " << want[i]);
    }
    CHECK(naive::rel_l2(y, want) <= kElementwiseTol);
  }
}

TEST_CASE("elementwise.activations on strided input", "[elementwise]") {
  const auto base = naive::uniform(3 * 7 * 2, 9, -6, 6);
  const Tensor x = naive::tensor(base, {3, 7, 2}).permute({2, 0, 1});  // [2, 3, 7]
  for (const Activation& a : kActivations) {
    INFO(a.name);
    const Tensor y = a.op(ctx(), x);
    REQUIRE(y.shape() == Shape{2, 3, 7});
    std::vector<double> want(42);
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t k = 0; k < 7; ++k) want[size_t((i * 3 + j) * 7 + k)] = a.ref(base[size_t((j * 7 + k) * 2 + i)]);
    CHECK(naive::rel_l2(y, want) <= kElementwiseTol);
  }
}

TEST_CASE("elementwise.parallel chunks cover every element", "[elementwise]") {
  // Sizes past the kernels' grain so parallel_for really splits, with a thread count that does not
  // divide the work evenly.
  const rt::Context ctx3(rt::ContextOptions{rt::Device::cpu(), 3});
  const int64_t n = 200003;
  const auto x = naive::uniform(n, 23, -4, 4);
  const Tensor tx = naive::tensor(x, {n});
  std::vector<double> want(static_cast<size_t>(n));
  for (size_t i = 0; i < want.size(); ++i) want[i] = x[i] / (1.0 + std::exp(-x[i]));
  CHECK(naive::rel_l2(rt::silu(ctx3, tx), want) <= kElementwiseTol);
  // Many short rows broadcast against a row vector, and a few long rows against a column.
  const int64_t rows = 100003;
  const auto r = naive::uniform(3, 24);
  const Tensor tcol = naive::tensor(x, {n}).slice(0, 0, rows).unsqueeze(1);  // [rows, 1]
  std::vector<double> xs(x.begin(), x.begin() + rows);
  const Shape sa{rows, 1}, sb{1, 3};
  const Tensor s = rt::add(ctx3, tcol, naive::tensor(r, sb));
  CHECK(naive::rel_l2(s, binary_ref(xs, sa, r, sb, {rows, 3}, [](double p, double q) { return p + q; })) <=
        kElementwiseTol);
  const Tensor m = rt::mul(ctx3, naive::tensor(r, {3, 1}), tx.slice(0, 0, 3 * 66667).view({3, 66667}));
  const std::vector<double> xm(x.begin(), x.begin() + 3 * 66667);
  CHECK(naive::rel_l2(m, binary_ref(r, {3, 1}, xm, {3, 66667}, {3, 66667}, [](double p, double q) { return p * q; })) <=
        kElementwiseTol);
}

TEST_CASE("elementwise.empty tensors broadcast to size 0", "[elementwise]") {
  // numpy: a size-1 dim stretches to the other operand's size, including 0.
  CHECK(rt::add(ctx(), Tensor::zeros({3, 0}), Tensor::zeros({1})).shape() == Shape{3, 0});
  CHECK(rt::mul(ctx(), Tensor::zeros({1, 4}), Tensor::zeros({0, 1})).shape() == Shape{0, 4});
  CHECK(rt::silu(ctx(), Tensor::zeros({0, 5})).shape() == Shape{0, 5});
}
