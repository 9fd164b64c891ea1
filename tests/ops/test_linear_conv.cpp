// linear, matmul, conv2d and upsample_nearest2d against naive double loops (conv2d as the direct
// 6-nested-loop definition, not im2col). GEMM-based: relative L2 ≤ 1e-5 (float32 accumulation).
#include <vector>

#include "harness/naive.h"
#include "ops.h"

#include <catch2/catch.hpp>

using rt::Shape;
using rt::Tensor;

namespace {

constexpr double kGemmTol = 1e-5;

const rt::Context& ctx() {
  static const rt::Context c(rt::ContextOptions{rt::Device::cpu(), 2});
  return c;
}

}  // namespace

TEST_CASE("linear_conv.linear [2,3,5]x[7,5] with and without bias", "[linear]") {
  const int64_t k = 5, n = 7;
  // x is the permute(2,1,0) of a [5, 3, 2] base: logical [2, 3, 5], not contiguous.
  const auto xb = naive::uniform(30, 31), w = naive::uniform(n * k, 32), b = naive::uniform(n, 33);
  const Tensor tx = naive::tensor(xb, {5, 3, 2}).permute({2, 1, 0});
  auto xat = [&](int64_t i, int64_t j, int64_t kk) { return xb[size_t((kk * 3 + j) * 2 + i)]; };
  auto ref = [&](bool with_bias) {
    std::vector<double> y(2 * 3 * n);
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t o = 0; o < n; ++o) {
          double s = with_bias ? b[size_t(o)] : 0.0;
          for (int64_t kk = 0; kk < k; ++kk) s += xat(i, j, kk) * w[size_t(o * k + kk)];
          y[size_t((i * 3 + j) * n + o)] = s;
        }
    return y;
  };
  const Tensor tw = naive::tensor(w, {n, k}), tb = naive::tensor(b, {n});
  const Tensor y1 = rt::linear(ctx(), tx, tw, tb);
  REQUIRE(y1.shape() == Shape{2, 3, n});
  CHECK(naive::rel_l2(y1, ref(true)) <= kGemmTol);
  const Tensor y0 = rt::linear(ctx(), tx, tw);
  CHECK(naive::rel_l2(y0, ref(false)) <= kGemmTol);
  // Contiguous x, and a weight that is itself a transposed view ([k, n] base).
  std::vector<double> wt(size_t(n * k));
  for (int64_t o = 0; o < n; ++o)
    for (int64_t kk = 0; kk < k; ++kk) wt[size_t(kk * n + o)] = w[size_t(o * k + kk)];
  const Tensor twt = naive::tensor(wt, {k, n}).transpose(0, 1);
  CHECK(naive::rel_l2(rt::linear(ctx(), tx.contiguous(), twt, tb), ref(true)) <= kGemmTol);
  // A bias that is a strided view.
  std::vector<double> b2(size_t(2 * n));
  for (int64_t o = 0; o < n; ++o) b2[size_t(2 * o + 1)] = b[size_t(o)];
  const Tensor tb2 = naive::tensor(b2, {n, 2}).select(1, 1);
  CHECK(naive::rel_l2(rt::linear(ctx(), tx, tw, tb2), ref(true)) <= kGemmTol);
  // 1-D input.
  const Tensor y1d = rt::linear(ctx(), tx.select(0, 1).select(0, 2), tw, tb);
  REQUIRE(y1d.shape() == Shape{n});
  const std::vector<double> full = ref(true);
  const std::vector<double> want1d(full.begin() + (1 * 3 + 2) * n, full.begin() + (1 * 3 + 3) * n);
  CHECK(naive::rel_l2(y1d, want1d) <= kGemmTol);
}

TEST_CASE("linear_conv.matmul batched and strided", "[linear]") {
  const int64_t bt = 2, m = 3, k = 4, n = 6;
  const auto a = naive::uniform(bt * m * k, 34), bb = naive::uniform(bt * n * k, 35);
  const Tensor ta = naive::tensor(a, {bt, m, k});
  const Tensor tb = naive::tensor(bb, {bt, n, k}).transpose(1, 2);  // logical [bt, k, n], strided
  std::vector<double> want(size_t(bt * m * n));
  for (int64_t b = 0; b < bt; ++b)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t kk = 0; kk < k; ++kk) s += a[size_t((b * m + i) * k + kk)] * bb[size_t((b * n + j) * k + kk)];
        want[size_t((b * m + i) * n + j)] = s;
      }
  const Tensor c = rt::matmul(ctx(), ta, tb);
  REQUIRE(c.shape() == Shape{bt, m, n});
  CHECK(naive::rel_l2(c, want) <= kGemmTol);
  // 2-D: the second batch alone.
  const Tensor c2 = rt::matmul(ctx(), ta.select(0, 1), tb.select(0, 1));
  CHECK(naive::rel_l2(c2, std::vector<double>(want.begin() + m * n, want.end())) <= kGemmTol);
}

namespace {

struct ConvCase {
  int64_t kh, kw, stride, pad;
};

// The definition: out[b,o,y,x] = bias[o] + Σ_c Σ_ky Σ_kx w[o,c,ky,kx]·xpad[b,c,y·s+ky−p,x·s+kx−p].
std::vector<double> conv_ref(const std::vector<double>& x, const Shape& xs, const std::vector<double>& w,
                             const Shape& ws, const std::vector<double>* bias, int64_t s, int64_t p) {
  const int64_t n = xs[0], c = xs[1], h = xs[2], wd = xs[3], o = ws[0], kh = ws[2], kw = ws[3];
  const int64_t ho = (h + 2 * p - kh) / s + 1, wo = (wd + 2 * p - kw) / s + 1;
  std::vector<double> out(size_t(n * o * ho * wo));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t oc = 0; oc < o; ++oc)
      for (int64_t y = 0; y < ho; ++y)
        for (int64_t xx = 0; xx < wo; ++xx) {
          double acc = bias ? (*bias)[size_t(oc)] : 0.0;
          for (int64_t ci = 0; ci < c; ++ci)
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t iy = y * s + ky - p, ix = xx * s + kx - p;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                acc += w[size_t(naive::lin(ws, {oc, ci, ky, kx}))] * x[size_t(naive::lin(xs, {b, ci, iy, ix}))];
              }
          out[size_t(naive::lin({n, o, ho, wo}, {b, oc, y, xx}))] = acc;
        }
  return out;
}

}  // namespace

TEST_CASE("linear_conv.conv2d vs direct loops", "[conv]") {
  const int64_t n = 2, c = 3, h = 7, wd = 5, o = 4;
  const Shape xs{n, c, h, wd};
  const auto x = naive::uniform(n * c * h * wd, 36);
  const auto bias = naive::uniform(o, 37);
  const Tensor tx = naive::tensor(x, xs);
  // The same input stored channels-last and viewed as NCHW (non-contiguous).
  std::vector<double> xcl(x.size());
  for (int64_t i = 0; i < int64_t(x.size()); ++i) {
    const auto idx = naive::unlin(xs, i);
    xcl[size_t(naive::lin({n, h, wd, c}, {idx[0], idx[2], idx[3], idx[1]}))] = x[size_t(i)];
  }
  const Tensor txcl = naive::tensor(xcl, {n, h, wd, c}).permute({0, 3, 1, 2});
  const ConvCase cases[] = {{3, 3, 1, 1}, {1, 1, 1, 0}, {3, 3, 2, 0}, {3, 3, 2, 1}, {3, 2, 1, 1},
                            {5, 5, 1, 2}, {3, 3, 3, 1}, {7, 5, 1, 0}, {2, 2, 2, 0}};
  for (const ConvCase& cc : cases) {
    INFO("kernel " << cc.kh << "x" << cc.kw << " stride " << cc.stride << " pad " << cc.pad);
    const Shape ws{o, c, cc.kh, cc.kw};
    const auto w = naive::uniform(rt::shape_numel(ws), 38 + uint64_t(cc.kh * 10 + cc.kw));
    const Tensor tw = naive::tensor(w, ws);
    const int64_t ho = (h + 2 * cc.pad - cc.kh) / cc.stride + 1, wo = (wd + 2 * cc.pad - cc.kw) / cc.stride + 1;
    const Tensor y = rt::conv2d(ctx(), tx, tw, naive::tensor(bias, {o}), cc.stride, cc.pad);
    REQUIRE(y.shape() == Shape{n, o, ho, wo});
    CHECK(naive::rel_l2(y, conv_ref(x, xs, w, ws, &bias, cc.stride, cc.pad)) <= kGemmTol);
    const Tensor y0 = rt::conv2d(ctx(), txcl, tw, {}, cc.stride, cc.pad);
    CHECK(naive::rel_l2(y0, conv_ref(x, xs, w, ws, nullptr, cc.stride, cc.pad)) <= kGemmTol);
  }
}

TEST_CASE("linear_conv.upsample_nearest2d", "[conv]") {
  const Shape xs{2, 3, 5, 7};
  const auto x = naive::uniform(rt::shape_numel(xs), 39);
  // Stored as [2, 5, 7, 3] and permuted to NCHW.
  std::vector<double> xcl(x.size());
  for (int64_t i = 0; i < int64_t(x.size()); ++i) {
    const auto idx = naive::unlin(xs, i);
    xcl[size_t(naive::lin({2, 5, 7, 3}, {idx[0], idx[2], idx[3], idx[1]}))] = x[size_t(i)];
  }
  const Tensor inputs[] = {naive::tensor(x, xs), naive::tensor(xcl, {2, 5, 7, 3}).permute({0, 3, 1, 2})};
  for (const Tensor& tx : inputs)
    for (int64_t f : {1, 2, 3}) {
      INFO("factor " << f << (tx.is_contiguous() ? " contiguous" : " strided"));
      const Tensor y = rt::upsample_nearest2d(ctx(), tx, f);
      const Shape ys{2, 3, 5 * f, 7 * f};
      REQUIRE(y.shape() == ys);
      std::vector<double> want(size_t(rt::shape_numel(ys)));
      for (int64_t i = 0; i < int64_t(want.size()); ++i) {
        const auto idx = naive::unlin(ys, i);
        want[size_t(i)] = x[size_t(naive::lin(xs, {idx[0], idx[1], idx[2] / f, idx[3] / f}))];
      }
      CHECK(naive::max_abs(y, want) == 0.0);  // a pure copy: exact
    }
}

TEST_CASE("linear_conv.empty operands", "[linear]") {
  // An empty reduction (K = 0) sums nothing: linear gives the bias, matmul gives zeros (as torch).
  const Tensor y = rt::linear(ctx(), Tensor::zeros({3, 0}), Tensor::zeros({4, 0}), Tensor::full({4}, 2.f));
  REQUIRE(y.shape() == Shape{3, 4});
  CHECK(naive::max_abs(y, std::vector<double>(12, 2.0)) == 0.0);
  const Tensor y0 = rt::linear(ctx(), Tensor::zeros({2, 0}), Tensor::zeros({3, 0}));
  CHECK(naive::max_abs(y0, std::vector<double>(6, 0.0)) == 0.0);
  CHECK(rt::linear(ctx(), Tensor::zeros({0, 5}), Tensor::zeros({4, 5}), Tensor::full({4}, 1.f)).shape() == Shape{0, 4});
  CHECK(rt::linear(ctx(), Tensor::zeros({2, 5}), Tensor::zeros({0, 5})).shape() == Shape{2, 0});
  const Tensor m = rt::matmul(ctx(), Tensor::full({2, 3, 0}, 1.f), Tensor::full({2, 0, 4}, 1.f));
  REQUIRE(m.shape() == Shape{2, 3, 4});
  CHECK(naive::max_abs(m, std::vector<double>(24, 0.0)) == 0.0);
  CHECK(rt::matmul(ctx(), Tensor::zeros({2, 0, 3}), Tensor::zeros({2, 3, 4})).shape() == Shape{2, 0, 4});
  CHECK(rt::matmul(ctx(), Tensor::zeros({0, 2, 3}), Tensor::zeros({0, 3, 4})).shape() == Shape{0, 2, 4});
  CHECK(rt::upsample_nearest2d(ctx(), Tensor::zeros({1, 2, 0, 3}), 2).shape() == Shape{1, 2, 0, 6});
}
