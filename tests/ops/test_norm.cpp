// layer_norm, rms_norm, group_norm and softmax against double references written from the
// definitions (biased variance, eps inside the root). Reductions: relative L2 ≤ 1e-5.
#include <cmath>
#include <vector>

#include "harness/naive.h"
#include "ops.h"

#include <catch2/catch.hpp>

using rt::Shape;
using rt::Tensor;

namespace {

constexpr double kReductionTol = 1e-5;

const rt::Context& ctx() {
  static const rt::Context c(rt::ContextOptions{rt::Device::cpu(), 2});
  return c;
}

// Normalizes each run of `c` consecutive values of `x` (rows), then w·y + b per column.
std::vector<double> layer_norm_ref(const std::vector<double>& x, int64_t c, const std::vector<double>* w,
                                   const std::vector<double>* b, double eps) {
  std::vector<double> y(x.size());
  for (size_t r = 0; r < x.size() / size_t(c); ++r) {
    double mean = 0, var = 0;
    for (int64_t j = 0; j < c; ++j) mean += x[r * size_t(c) + size_t(j)];
    mean /= double(c);
    for (int64_t j = 0; j < c; ++j) var += std::pow(x[r * size_t(c) + size_t(j)] - mean, 2);
    var /= double(c);
    for (int64_t j = 0; j < c; ++j) {
      double v = (x[r * size_t(c) + size_t(j)] - mean) / std::sqrt(var + eps);
      if (w) v *= (*w)[size_t(j)];
      if (b) v += (*b)[size_t(j)];
      y[r * size_t(c) + size_t(j)] = v;
    }
  }
  return y;
}

}  // namespace

TEST_CASE("norm.layer_norm with and without affine", "[norm]") {
  const int64_t c = 13;
  const auto x = naive::uniform(3 * 5 * c, 11, -2, 3);
  const auto w = naive::uniform(c, 12, 0.5, 1.5), b = naive::uniform(c, 13);
  const Tensor tx = naive::tensor(x, {3, 5, c});
  const Tensor tw = naive::tensor(w, {c}), tb = naive::tensor(b, {c});
  CHECK(naive::rel_l2(rt::layer_norm(ctx(), tx, tw, tb, 1e-6f), layer_norm_ref(x, c, &w, &b, 1e-6)) <= kReductionTol);
  CHECK(naive::rel_l2(rt::layer_norm(ctx(), tx, {}, {}, 1e-6f), layer_norm_ref(x, c, nullptr, nullptr, 1e-6)) <=
        kReductionTol);
  CHECK(naive::rel_l2(rt::layer_norm(ctx(), tx, tw, {}, 1e-5f), layer_norm_ref(x, c, &w, nullptr, 1e-5)) <=
        kReductionTol);
  // A large eps relative to the variance must show up (eps inside the root, not added to the result).
  CHECK(naive::rel_l2(rt::layer_norm(ctx(), tx, {}, {}, 0.5f), layer_norm_ref(x, c, nullptr, nullptr, 0.5)) <=
        kReductionTol);
}

TEST_CASE("norm.layer_norm strided input and large mean", "[norm]") {
  // x [4, 9] is the transpose of a [9, 4] base; rows have mean ~1000 and spread ~0.01, where a
  // one-pass float variance would cancel catastrophically.
  const auto base = naive::uniform(36, 14, 999.99, 1000.01);
  const Tensor tx = naive::tensor(base, {9, 4}).transpose(0, 1);
  std::vector<double> x(36);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 9; ++j) x[size_t(i * 9 + j)] = base[size_t(j * 4 + i)];
  const Tensor y = rt::layer_norm(ctx(), tx, {}, {}, 1e-12f);
  REQUIRE(y.shape() == Shape{4, 9});
  CHECK(naive::rel_l2(y, layer_norm_ref(x, 9, nullptr, nullptr, 1e-12)) <= kReductionTol);
}

TEST_CASE("norm.rms_norm", "[norm]") {
  const int64_t c = 11;
  const auto x = naive::uniform(2 * 3 * c, 15, -4, 4);
  const auto w = naive::uniform(c, 16, 0.2, 2);
  auto ref = [&](const std::vector<double>& xv, bool weighted, double eps) {
    std::vector<double> y(xv.size());
    for (size_t r = 0; r < xv.size() / size_t(c); ++r) {
      double ms = 0;
      for (int64_t j = 0; j < c; ++j) ms += xv[r * size_t(c) + size_t(j)] * xv[r * size_t(c) + size_t(j)];
      ms /= double(c);
      for (int64_t j = 0; j < c; ++j)
        y[r * size_t(c) + size_t(j)] =
            xv[r * size_t(c) + size_t(j)] / std::sqrt(ms + eps) * (weighted ? w[size_t(j)] : 1.0);
    }
    return y;
  };
  const Tensor tx = naive::tensor(x, {2, 3, c});
  CHECK(naive::rel_l2(rt::rms_norm(ctx(), tx, naive::tensor(w, {c}), 1e-6f), ref(x, true, 1e-6)) <= kReductionTol);
  CHECK(naive::rel_l2(rt::rms_norm(ctx(), tx, {}, 1e-6f), ref(x, false, 1e-6)) <= kReductionTol);
  CHECK(naive::rel_l2(rt::rms_norm(ctx(), tx, {}, 2.f), ref(x, false, 2.0)) <= kReductionTol);
  // Strided: x [3, c] = rows 0..2 of the transpose of a [c, 5] base.
  const auto base = naive::uniform(c * 5, 17, -1, 1);
  const Tensor ts = naive::tensor(base, {c, 5}).transpose(0, 1).slice(0, 1, 4);
  std::vector<double> xs(size_t(3 * c));
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < c; ++j) xs[size_t(i * c + j)] = base[size_t(j * 5 + i + 1)];
  CHECK(naive::rel_l2(rt::rms_norm(ctx(), ts, naive::tensor(w, {c}), 1e-6f), ref(xs, true, 1e-6)) <= kReductionTol);
}

TEST_CASE("norm.group_norm N=2 C=6 groups=3 spatial 5x3", "[norm]") {
  const int64_t n = 2, c = 6, g = 3, h = 5, wd = 3, cg = c / g;
  const auto x = naive::uniform(n * c * h * wd, 18, -2, 5);
  const auto w = naive::uniform(c, 19, 0.5, 1.5), b = naive::uniform(c, 20);
  auto ref = [&](const std::vector<double>& xv, bool affine, double eps) {
    std::vector<double> y(xv.size());
    for (int64_t bi = 0; bi < n; ++bi)
      for (int64_t gi = 0; gi < g; ++gi) {
        double mean = 0, var = 0;
        const double count = double(cg * h * wd);
        for (int64_t ch = gi * cg; ch < (gi + 1) * cg; ++ch)
          for (int64_t s = 0; s < h * wd; ++s) mean += xv[size_t((bi * c + ch) * h * wd + s)];
        mean /= count;
        for (int64_t ch = gi * cg; ch < (gi + 1) * cg; ++ch)
          for (int64_t s = 0; s < h * wd; ++s) var += std::pow(xv[size_t((bi * c + ch) * h * wd + s)] - mean, 2);
        var /= count;
        for (int64_t ch = gi * cg; ch < (gi + 1) * cg; ++ch)
          for (int64_t s = 0; s < h * wd; ++s) {
            const size_t i = size_t((bi * c + ch) * h * wd + s);
            y[i] = (xv[i] - mean) / std::sqrt(var + eps);
            if (affine) y[i] = y[i] * w[size_t(ch)] + b[size_t(ch)];
          }
      }
    return y;
  };
  const Tensor tx = naive::tensor(x, {n, c, h, wd});
  const Tensor y = rt::group_norm(ctx(), tx, g, naive::tensor(w, {c}), naive::tensor(b, {c}), 1e-6f);
  REQUIRE(y.shape() == Shape{n, c, h, wd});
  CHECK(naive::rel_l2(y, ref(x, true, 1e-6)) <= kReductionTol);
  CHECK(naive::rel_l2(rt::group_norm(ctx(), tx, g, {}, {}, 1e-6f), ref(x, false, 1e-6)) <= kReductionTol);
  // Channels-last storage viewed as [N, C, H, W].
  const Tensor tcl = naive::tensor(x, {n, h, wd, c}).permute({0, 3, 1, 2});
  std::vector<double> xcl(x.size());
  for (int64_t bi = 0; bi < n; ++bi)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t s = 0; s < h * wd; ++s)
        xcl[size_t((bi * c + ch) * h * wd + s)] = x[size_t((bi * h * wd + s) * c + ch)];
  CHECK(naive::rel_l2(rt::group_norm(ctx(), tcl, g, naive::tensor(w, {c}), naive::tensor(b, {c}), 1e-6f),
                      ref(xcl, true, 1e-6)) <= kReductionTol);
  // groups == 1 and groups == C are the layer-norm-like and instance-norm-like extremes.
  CHECK(naive::rel_l2(rt::group_norm(ctx(), tx, 1, {}, {}, 1e-6f),
                      layer_norm_ref(x, c * h * wd, nullptr, nullptr, 1e-6)) <= kReductionTol);
  CHECK(naive::rel_l2(rt::group_norm(ctx(), tx, c, {}, {}, 1e-6f), layer_norm_ref(x, h * wd, nullptr, nullptr, 1e-6)) <=
        kReductionTol);
}

namespace {

std::vector<double> softmax_ref(const std::vector<double>& x, int64_t c) {
  std::vector<double> y(x.size());
  for (size_t r = 0; r < x.size() / size_t(c); ++r) {
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < c; ++j) mx = std::fmax(mx, x[r * size_t(c) + size_t(j)]);
    for (int64_t j = 0; j < c; ++j) sum += std::exp(x[r * size_t(c) + size_t(j)] - mx);
    for (int64_t j = 0; j < c; ++j) y[r * size_t(c) + size_t(j)] = std::exp(x[r * size_t(c) + size_t(j)] - mx) / sum;
  }
  return y;
}

}  // namespace

TEST_CASE("norm.softmax rows incl. +-1e4", "[norm]") {
  const int64_t c = 7;
  auto x = naive::uniform(5 * c, 21, -3, 3);
  for (int64_t j = 0; j < c; ++j) {
    x[size_t(1 * c + j)] = 1e4 + j;         // all large positive: exp overflows without the max shift
    x[size_t(2 * c + j)] = -1e4 - 3.0 * j;  // all large negative: exp underflows without it
    x[size_t(3 * c + j)] = 0.25;            // uniform row
  }
  x[size_t(4 * c + 2)] = 1e4;  // one dominant entry next to ordinary ones
  x[size_t(4 * c + 5)] = -1e4;
  const Tensor y = rt::softmax(ctx(), naive::tensor(x, {5, c}));
  REQUIRE(naive::all_finite(y));
  CHECK(naive::rel_l2(y, softmax_ref(x, c)) <= kReductionTol);
  CHECK(naive::max_abs(y, softmax_ref(x, c)) <= 1e-6);
  const auto got = naive::read(y);
  for (int64_t r = 0; r < 5; ++r) {
    double s = 0;
    for (int64_t j = 0; j < c; ++j) s += got[size_t(r * c + j)];
    CHECK(s == Approx(1.0).epsilon(1e-6));
  }
  CHECK(got[size_t(3 * c)] == Approx(1.0 / c).epsilon(1e-6));
  CHECK(got[size_t(4 * c + 2)] == 1.0);
}

TEST_CASE("norm.softmax strided and masked", "[norm]") {
  // Softmax over the last dim of a transposed [3, 10] base -> [10, 3]; then over a row with -inf
  // entries (a mask), which must get exactly zero weight.
  const auto base = naive::uniform(30, 22, -5, 5);
  const Tensor t = naive::tensor(base, {3, 10}).transpose(0, 1);
  std::vector<double> x(30);
  for (int64_t i = 0; i < 10; ++i)
    for (int64_t j = 0; j < 3; ++j) x[size_t(i * 3 + j)] = base[size_t(j * 10 + i)];
  CHECK(naive::rel_l2(rt::softmax(ctx(), t), softmax_ref(x, 3)) <= kReductionTol);

  std::vector<double> m = {0.5, -INFINITY, 1.5, -INFINITY, -0.5};
  const Tensor ym = rt::softmax(ctx(), naive::tensor(m, {1, 5}));
  const auto got = naive::read(ym);
  CHECK(got[1] == 0.0);
  CHECK(got[3] == 0.0);
  CHECK(naive::rel_l2(ym, softmax_ref(m, 5)) <= kReductionTol);
}

TEST_CASE("norm.parallel rows", "[norm]") {
  // More rows than the kernels' grain (64) on 3 threads, so row ranges are split unevenly.
  const rt::Context ctx3(rt::ContextOptions{rt::Device::cpu(), 3});
  const int64_t rows = 1001, c = 17;
  const auto x = naive::uniform(rows * c, 25, -3, 3);
  const Tensor tx = naive::tensor(x, {rows, c});
  CHECK(naive::rel_l2(rt::layer_norm(ctx3, tx, {}, {}, 1e-6f), layer_norm_ref(x, c, nullptr, nullptr, 1e-6)) <=
        kReductionTol);
  CHECK(naive::rel_l2(rt::softmax(ctx3, tx), softmax_ref(x, c)) <= kReductionTol);
  CHECK(naive::rel_l2(rt::group_norm(ctx3, tx.view({7, 11, 13, 17}), 11, {}, {}, 1e-6f),
                      layer_norm_ref(x, 13 * 17, nullptr, nullptr, 1e-6)) <= kReductionTol);
}

TEST_CASE("norm.empty tensors", "[norm]") {
  CHECK(rt::softmax(ctx(), Tensor::zeros({3, 0})).shape() == Shape{3, 0});
  CHECK(rt::softmax(ctx(), Tensor::zeros({0, 4})).shape() == Shape{0, 4});
  CHECK(rt::layer_norm(ctx(), Tensor::zeros({3, 0}), {}, {}, 1e-6f).shape() == Shape{3, 0});
  CHECK(rt::rms_norm(ctx(), Tensor::zeros({0, 8}), Tensor::full({8}, 1.f), 1e-6f).shape() == Shape{0, 8});
  CHECK(rt::group_norm(ctx(), Tensor::zeros({0, 6, 2, 2}), 3, {}, {}, 1e-6f).shape() == Shape{0, 6, 2, 2});
  CHECK(rt::group_norm(ctx(), Tensor::zeros({2, 6, 0}), 3, {}, {}, 1e-6f).shape() == Shape{2, 6, 0});
}
