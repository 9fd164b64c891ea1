// sattn::attention (the dense CPU reference behind it) against a naive double loop written from the
// definition softmax(scale·q·kᵀ + bias + mask)·v. Tolerance: relative L2 ≤ 1e-5 (two float32 GEMMs and
// a float32 exp; the softmax sum is double).
#include <cmath>
#include <vector>

#include "harness/naive.h"
#include "sparse_attention/attention.h"

#include <catch2/catch.hpp>

using rt::Shape;
using rt::Tensor;

namespace {

constexpr double kAttnTol = 1e-5;

const rt::Context& ctx() {
  static const rt::Context c(rt::ContextOptions{rt::Device::cpu(), 2});
  return c;
}

struct Problem {
  int64_t b, lq, lk, h, d, dv;
  std::vector<double> q, k, v;  // row-major [B, L, H, D]
  std::vector<double> bias;     // row-major [B or 1, H, Lq, Lk], empty = none
  bool bias_batched = false;
  bool causal = false;
  double scale = 0;  // 0 = 1/sqrt(D)
};

std::vector<double> reference(const Problem& p) {
  const double scale = p.scale != 0 ? p.scale : 1.0 / std::sqrt(double(p.d));
  std::vector<double> out(size_t(p.b * p.lq * p.h * p.dv));
  std::vector<double> s(size_t(p.lk));
  for (int64_t b = 0; b < p.b; ++b)
    for (int64_t h = 0; h < p.h; ++h)
      for (int64_t i = 0; i < p.lq; ++i) {
        double mx = -INFINITY;
        for (int64_t j = 0; j < p.lk; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < p.d; ++c)
            dot += p.q[size_t(naive::lin({p.b, p.lq, p.h, p.d}, {b, i, h, c}))] *
                   p.k[size_t(naive::lin({p.b, p.lk, p.h, p.d}, {b, j, h, c}))];
          s[size_t(j)] = scale * dot;
          if (!p.bias.empty())
            s[size_t(j)] += p.bias[size_t(
                naive::lin({p.bias_batched ? p.b : 1, p.h, p.lq, p.lk}, {p.bias_batched ? b : 0, h, i, j}))];
          if (p.causal && j > i) s[size_t(j)] = -INFINITY;
          mx = std::fmax(mx, s[size_t(j)]);
        }
        double sum = 0;
        for (int64_t j = 0; j < p.lk; ++j) sum += (s[size_t(j)] = std::exp(s[size_t(j)] - mx));
        for (int64_t c = 0; c < p.dv; ++c) {
          double acc = 0;
          for (int64_t j = 0; j < p.lk; ++j)
            acc += s[size_t(j)] * p.v[size_t(naive::lin({p.b, p.lk, p.h, p.dv}, {b, j, h, c}))];
          out[size_t(naive::lin({p.b, p.lq, p.h, p.dv}, {b, i, h, c}))] = acc / sum;
        }
      }
  return out;
}

Problem make(int64_t b, int64_t lq, int64_t lk, int64_t h, int64_t d, int64_t dv, uint64_t seed, double amp = 1.0) {
  Problem p{b, lq, lk, h, d, dv, {}, {}, {}, {}, false, false, 0};
  p.q = naive::uniform(b * lq * h * d, seed, -amp, amp);
  p.k = naive::uniform(b * lk * h * d, seed + 1, -amp, amp);
  p.v = naive::uniform(b * lk * h * dv, seed + 2);
  return p;
}

sattn::AttentionParams params(const Problem& p) {
  sattn::AttentionParams a;
  a.q = naive::tensor(p.q, {p.b, p.lq, p.h, p.d});
  a.k = naive::tensor(p.k, {p.b, p.lk, p.h, p.d});
  a.v = naive::tensor(p.v, {p.b, p.lk, p.h, p.dv});
  a.scale = float(p.scale);
  a.mask = p.causal ? sattn::MaskKind::Causal : sattn::MaskKind::None;
  if (!p.bias.empty())
    a.bias = p.bias_batched ? naive::tensor(p.bias, {p.b, p.h, p.lq, p.lk}) : naive::tensor(p.bias, {p.h, p.lq, p.lk});
  return a;
}

void check(const Problem& p, const sattn::AttentionParams& a, double tol = kAttnTol) {
  const Tensor out = sattn::attention(ctx(), a);
  REQUIRE(out.shape() == Shape{p.b, p.lq, p.h, p.dv});
  CHECK(out.is_contiguous());
  REQUIRE(naive::all_finite(out));
  CHECK(naive::rel_l2(out, reference(p)) <= tol);
}

}  // namespace

TEST_CASE("attention.dense cross-length B=2 Lq=7 Lk=9 H=3 D=5 Dv=4", "[attention]") {
  Problem p = make(2, 7, 9, 3, 5, 4, 60);
  SECTION("default scale") { check(p, params(p)); }
  SECTION("explicit scale") {
    p.scale = 0.37;
    check(p, params(p));
  }
  SECTION("scale 1 (T5)") {
    p.scale = 1.0;
    check(p, params(p));
  }
  SECTION("causal") {
    p.causal = true;
    check(p, params(p));
  }
  SECTION("causal with Lq > Lk") {
    Problem r = make(2, 9, 7, 3, 5, 4, 61);
    r.causal = true;
    check(r, params(r));
  }
  SECTION("bias [H, Lq, Lk]") {
    p.bias = naive::uniform(3 * 7 * 9, 62, -3, 3);
    check(p, params(p));
  }
  SECTION("bias [B, H, Lq, Lk] with causal and scale 1") {
    p.bias = naive::uniform(2 * 3 * 7 * 9, 63, -3, 3);
    p.bias_batched = true;
    p.causal = true;
    p.scale = 1.0;
    check(p, params(p));
  }
}

TEST_CASE("attention.dense strided q k v and bias", "[attention]") {
  const Problem p = make(2, 7, 9, 3, 5, 4, 64);
  sattn::AttentionParams a = params(p);
  // q stored as [B, H, Lq, D] (the layout after a head split) and viewed as [B, Lq, H, D].
  std::vector<double> qbhld(p.q.size());
  for (int64_t i = 0; i < int64_t(p.q.size()); ++i) {
    const auto idx = naive::unlin({2, 7, 3, 5}, i);
    qbhld[size_t(naive::lin({2, 3, 7, 5}, {idx[0], idx[2], idx[1], idx[3]}))] = p.q[size_t(i)];
  }
  a.q = naive::tensor(qbhld, {2, 3, 7, 5}).permute({0, 2, 1, 3});
  REQUIRE_FALSE(a.q.is_contiguous());
  // k as a slice of a fused [B, Lk, 2, H, D] buffer (the second half), v padded along D.
  std::vector<double> kv(size_t(2 * 9 * 2 * 3 * 5));
  for (int64_t i = 0; i < int64_t(p.k.size()); ++i) {
    const auto idx = naive::unlin({2, 9, 3, 5}, i);
    kv[size_t(naive::lin({2, 9, 2, 3, 5}, {idx[0], idx[1], 1, idx[2], idx[3]}))] = p.k[size_t(i)];
  }
  a.k = naive::tensor(kv, {2, 9, 2, 3, 5}).select(2, 1);
  std::vector<double> vpad(size_t(2 * 9 * 3 * 6), 123.0);
  for (int64_t i = 0; i < int64_t(p.v.size()); ++i) {
    const auto idx = naive::unlin({2, 9, 3, 4}, i);
    vpad[size_t(naive::lin({2, 9, 3, 6}, {idx[0], idx[1], idx[2], idx[3] + 1}))] = p.v[size_t(i)];
  }
  a.v = naive::tensor(vpad, {2, 9, 3, 6}).slice(3, 1, 5);
  check(p, a);
  // A [H, Lq, Lk] bias given as a broadcast view of [1, Lq, Lk] (stride 0 over heads).
  Problem pb = p;
  const auto one = naive::uniform(7 * 9, 65, -2, 2);
  pb.bias.clear();
  for (int h = 0; h < 3; ++h) pb.bias.insert(pb.bias.end(), one.begin(), one.end());
  a.bias = naive::tensor(one, {1, 7, 9}).expand({3, 7, 9});
  check(pb, a);
}

TEST_CASE("attention.dense long sequence crosses the query band", "[attention]") {
  // Lq = 1100 spans several internal query bands; causal makes each band see a different key range.
  Problem p = make(1, 1100, 1100, 1, 8, 8, 66);
  check(p, params(p));
  p.causal = true;
  check(p, params(p));
  // Cross-length with a short key set and a batched bias.
  Problem c = make(2, 1100, 33, 1, 8, 3, 67);
  c.bias = naive::uniform(2 * 1100 * 33, 68, -1, 1);
  c.bias_batched = true;
  check(c, params(c));
}

TEST_CASE("attention.dense extreme scores stay finite", "[attention]") {
  // |q·k|·scale up to ~1e4: exp overflows unless the row max is subtracted first.
  Problem p = make(2, 7, 9, 3, 5, 4, 69, 60.0);
  check(p, params(p));
  // A bias of ±1e4 on top (a T5-like or mask-like additive term), batched.
  p.bias = naive::uniform(2 * 3 * 7 * 9, 70, -1e4, 1e4);
  p.bias_batched = true;
  check(p, params(p));
  // Every key masked but one by -1e9 in the bias: the output is that key's value.
  Problem m = make(1, 4, 6, 2, 5, 4, 71);
  m.bias.assign(size_t(2 * 4 * 6), -1e9);
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t i = 0; i < 4; ++i) m.bias[size_t((h * 4 + i) * 6 + 3)] = 0;
  const Tensor out = sattn::attention(ctx(), params(m));
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t c = 0; c < 4; ++c)
        CHECK(out.at({0, i, h, c}) == float(m.v[size_t(naive::lin({1, 6, 2, 4}, {0, 3, h, c}))]));
}
