// SLA on the CPU (methods/topk.h, reference/sla_cpu.h): the planner against a brute-force classification
// (double softmax over pooled scores, repeated argmax), layouts valid; critical = 1 is dense attention;
// the training-free output equals dense attention with the plan's tile mask as a -inf bias; the linear
// branch equals a naive O(L²·D) loop; the projection is added as O_s + O_l·Wᵀ + b.
// Tolerance: relative L2 <= 1e-5 (f32 scores, sums in another order than the references).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "harness/compare.h"
#include "harness/gpu.h"
#include "rng.h"
#include "sparse_attention/attention.h"
#include "sparse_attention/kernels/sparse/block_sparse.h"
#include "sparse_attention/methods/structured.h"
#include "sparse_attention/methods/topk.h"
#include "sparse_attention/reference/dense_cpu.h"
#include "sparse_attention/reference/sla_cpu.h"
#include "sparse_attention/reference/sparse_cpu.h"

#include <catch2/catch.hpp>

using rt::Tensor;
using sattn::AttentionParams;
using sattn::SlaTiles;
using sattn::kernels::kBlockSparseKvTile;
using sattn::kernels::kBlockSparseQTile;

namespace {

constexpr double kTol = 1e-5;

const rt::Context& ctx() { return test::cpu_context(); }

sattn::MethodSpec sla(const char* text) {
  auto r = sattn::parse_method(text);
  REQUIRE(r.is_ok());
  return r.value();
}

// q, k, v [2, L, 2, 16]; k is a strided view (the first two heads of four).
AttentionParams random_qkv(int64_t len, uint64_t seed) {
  rt::TorchGenerator g(seed);
  AttentionParams p;
  p.q = g.randn({2, len, 2, 16});
  p.k = g.randn({2, len, 4, 16}).slice(2, 0, 2);
  p.v = g.randn({2, len, 2, 16});
  return p;
}

// The dense rule over a plain sequence of len tokens, as attention() builds it for a call without tokens.
sattn::MaskRule plain_rule(int64_t len) {
  sattn::MaskRule r;
  r.tokens.text_len = len;
  return r;
}

float scale_of(const AttentionParams& p) { return 1.f / std::sqrt(float(p.q.size(3))); }

// Tile means in double: [B, H, n, D].
std::vector<double> pooled(const Tensor& x_in, int64_t tile) {
  const Tensor x = x_in.contiguous();
  const int64_t b_n = x.size(0), len = x.size(1), heads = x.size(2), d = x.size(3), n = (len + tile - 1) / tile;
  std::vector<double> out(size_t(b_n * heads * n * d), 0.0);
  for (int64_t b = 0; b < b_n; ++b)
    for (int64_t i = 0; i < len; ++i)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t c = 0; c < d; ++c)
          out[size_t(((b * heads + h) * n + i / tile) * d + c)] +=
              double(x.data<float>()[((b * len + i) * heads + h) * d + c]) /
              double(std::min(tile, len - (i / tile) * tile));
  return out;
}

// Brute force: per row, P = softmax(scale · pooled scores) in double, then repeated argmax (lowest index on
// ties). Rows whose probability gap at a class boundary is below 1e-7 (what f32 scores could swap) are
// reported in *near_tie.
void brute_force(const AttentionParams& p, const sattn::SlaSpec& spec, int64_t q_tile, int64_t kv_tile,
                 std::vector<std::vector<int32_t>>* critical, std::vector<std::vector<int32_t>>* marginal,
                 std::vector<bool>* near_tie) {
  const int64_t b_n = p.q.size(0), len = p.q.size(1), heads = p.q.size(2), d = p.q.size(3);
  const int64_t nq = (len + q_tile - 1) / q_tile, nk = (len + kv_tile - 1) / kv_tile;
  const std::vector<double> pq = pooled(p.q, q_tile), pk = pooled(p.k, kv_tile);
  const int64_t n_crit = std::max<int64_t>(1, int64_t(std::ceil(spec.critical * double(nk) - 1e-9)));
  const int64_t n_marg = std::min(nk - n_crit, int64_t(std::ceil(spec.marginal * double(nk) - 1e-9)));
  for (int64_t r = 0; r < b_n * heads * nq; ++r) {
    const int64_t bh = r / nq;
    std::vector<double> prob(static_cast<size_t>(nk));
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < nk; ++j) {
      double dot = 0;
      for (int64_t c = 0; c < d; ++c) dot += pq[size_t(r * d + c)] * pk[size_t((bh * nk + j) * d + c)];
      prob[size_t(j)] = dot * double(scale_of(p));
      mx = std::max(mx, prob[size_t(j)]);
    }
    for (double& x : prob) sum += (x = std::exp(x - mx));
    for (double& x : prob) x /= sum;
    std::vector<int32_t> taken;
    std::vector<double> left = prob;
    std::vector<double> picked;
    for (int64_t n = 0; n < n_crit + n_marg + 1 && n < nk; ++n) {
      int32_t best = -1;
      for (int32_t j = 0; j < int32_t(nk); ++j)
        if (left[size_t(j)] >= 0 && (best < 0 || left[size_t(j)] > left[size_t(best)])) best = j;
      taken.push_back(best);
      picked.push_back(left[size_t(best)]);
      left[size_t(best)] = -1;
    }
    bool tie = false;
    for (int64_t boundary : {n_crit, n_crit + n_marg})
      if (boundary > 0 && boundary < int64_t(picked.size()) && picked[size_t(boundary - 1)] - picked[size_t(boundary)] < 1e-7)
        tie = true;
    std::vector<int32_t> c(taken.begin(), taken.begin() + n_crit), m(taken.begin() + n_crit, taken.begin() + n_crit + n_marg);
    std::sort(c.begin(), c.end());
    std::sort(m.begin(), m.end());
    critical->push_back(c);
    marginal->push_back(m);
    near_tie->push_back(tie);
  }
}

std::vector<int32_t> row(const std::vector<int32_t>& offsets, const std::vector<int32_t>& index, int64_t e) {
  return {index.begin() + offsets[size_t(e)], index.begin() + offsets[size_t(e) + 1]};
}

// The plan's tile mask as a [B, H, L, L] bias: 0 on critical tiles, -inf elsewhere.
Tensor tile_bias(const SlaTiles& t, int64_t b_n, int64_t heads) {
  const sattn::BlockLayout& l = t.layout;
  const int64_t len = l.seq_len;
  std::vector<float> bias(size_t(b_n * heads * len * len), -INFINITY);
  for (int64_t b = 0; b < b_n; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < len; ++i)
        for (int32_t kt : row(l.full_offsets, l.full_index, l.entry(b, h, i / l.q_tile)))
          for (int64_t j = kt * l.kv_tile; j < std::min(len, (kt + 1) * l.kv_tile); ++j)
            bias[size_t(((b * heads + h) * len + i) * len + j)] = 0.f;
  return Tensor::from_vector(bias, {b_n, heads, len, len});
}

// softmax over the head dim, in double.
std::vector<double> phi(const float* x, int64_t d) {
  std::vector<double> out(static_cast<size_t>(d));
  double mx = -INFINITY, sum = 0;
  for (int64_t c = 0; c < d; ++c) mx = std::max(mx, double(x[c]));
  for (int64_t c = 0; c < d; ++c) sum += (out[size_t(c)] = std::exp(double(x[c]) - mx));
  for (double& v : out) v /= sum;
  return out;
}

// O_l by the naive loop: Σ_j (φ(q_i)·φ(k_j)) v_j / (1e-5 + Σ_j φ(q_i)·φ(k_j)) over the branch's keys j.
Tensor naive_linear(const AttentionParams& p_in, const SlaTiles& t, sattn::reference::SlaLinearKeys keys) {
  const Tensor q = p_in.q.contiguous(), k = p_in.k.contiguous(), v = p_in.v.contiguous();
  const int64_t b_n = q.size(0), len = q.size(1), heads = q.size(2), d = q.size(3), dv = v.size(3);
  const sattn::BlockLayout& l = t.layout;
  std::vector<float> out(size_t(b_n * len * heads * dv));
  for (int64_t b = 0; b < b_n; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < len; ++i) {
        std::vector<char> use(size_t(len), keys == sattn::reference::SlaLinearKeys::All ? 1 : 0);
        if (keys == sattn::reference::SlaLinearKeys::Marginal)
          for (int32_t kt : row(t.marginal_offsets, t.marginal_index, l.entry(b, h, i / l.q_tile)))
            for (int64_t j = kt * l.kv_tile; j < std::min(len, (kt + 1) * l.kv_tile); ++j) use[size_t(j)] = 1;
        const std::vector<double> fq = phi(q.data<float>() + ((b * len + i) * heads + h) * d, d);
        std::vector<double> num(size_t(dv), 0.0);
        double den = 1e-5;
        for (int64_t j = 0; j < len; ++j) {
          if (!use[size_t(j)]) continue;
          const std::vector<double> fk = phi(k.data<float>() + ((b * len + j) * heads + h) * d, d);
          double w = 0;
          for (int64_t c = 0; c < d; ++c) w += fq[size_t(c)] * fk[size_t(c)];
          den += w;
          for (int64_t e = 0; e < dv; ++e) num[size_t(e)] += w * double(v.data<float>()[((b * len + j) * heads + h) * dv + e]);
        }
        for (int64_t e = 0; e < dv; ++e) out[size_t(((b * len + i) * heads + h) * dv + e)] = float(num[size_t(e)] / den);
      }
  return Tensor::from_vector(out, {b_n, len, heads, dv});
}

}  // namespace

TEST_CASE("sla.tile counts", "[sparse]") {
  CHECK(sattn::sla_tile_count(0.1, 70) == 7);  // 0.1 · 70 = 7.000000000000001 in doubles
  CHECK(sattn::sla_tile_count(0.05, 72) == 4);
  CHECK(sattn::sla_tile_count(1.0, 5) == 5);
  CHECK(sattn::sla_tile_count(0.0, 5) == 0);
  CHECK(sattn::sla_critical_count({0.001, 0.0}, 16) == 1);  // at least one tile
  CHECK(sattn::sla_critical_count({0.5, 0.5}, 0) == 0);
  CHECK(sattn::sla_marginal_count({0.5, 0.5}, 5) == 2);  // ceil(2.5) = 3 critical, 2 left
  CHECK(sattn::sla_marginal_count({0.05, 0.1}, 72) == 8);
}

TEST_CASE("sla.planner equals the brute-force classification", "[sparse]") {
  int compared = 0, rows = 0;
  for (int64_t len : {300, 1000}) {
    for (const char* text : {"sla:critical=0.05,marginal=0.1", "sla:critical=0.3,marginal=0.45", "sla:critical=1,marginal=0"}) {
      for (auto [qt, kt] : {std::pair<int64_t, int64_t>{kBlockSparseQTile, kBlockSparseKvTile}, {48, 16}}) {
        const AttentionParams p = random_qkv(len, uint64_t(len) * 7 + qt);
        const sattn::SlaSpec spec = sla(text).sla;
        const SlaTiles t = sattn::plan_sla(ctx(), p.q, p.k, scale_of(p), spec, plain_rule(len), qt, kt);
        INFO(text << " L=" << len << " tiles " << qt << "x" << kt);
        REQUIRE(sattn::validate(t.layout) == "");
        CHECK(t.layout.batch == 2);
        CHECK(t.layout.heads == 2);
        CHECK(t.layout.partial_index.empty());
        std::vector<std::vector<int32_t>> crit, marg;
        std::vector<bool> tie;
        brute_force(p, spec, qt, kt, &crit, &marg, &tie);
        REQUIRE(int64_t(crit.size()) == t.layout.entries());
        REQUIRE(int64_t(t.marginal_offsets.size()) == t.layout.entries() + 1);
        for (int64_t e = 0; e < t.layout.entries(); ++e) {
          const std::vector<int32_t> c = row(t.layout.full_offsets, t.layout.full_index, e);
          const std::vector<int32_t> m = row(t.marginal_offsets, t.marginal_index, e);
          CHECK(c.size() == crit[size_t(e)].size());
          CHECK(m.size() == marg[size_t(e)].size());
          CHECK(std::is_sorted(m.begin(), m.end()));
          for (int32_t x : m) CHECK(!std::binary_search(c.begin(), c.end(), x));
          ++rows;
          if (tie[size_t(e)]) continue;
          ++compared;
          CHECK(c == crit[size_t(e)]);
          CHECK(m == marg[size_t(e)]);
        }
      }
    }
  }
  CHECK(compared >= rows * 9 / 10);
}

TEST_CASE("sla.critical=1 is dense attention", "[sparse]") {
  for (int64_t len : {300, 1000}) {
    AttentionParams p = random_qkv(len, 11 + uint64_t(len));
    const Tensor dense = sattn::reference::dense_attention_cpu(ctx(), p);
    p.method = sla("sla:critical=1,marginal=0");
    const test::Diff diff = test::compare(sattn::attention(ctx(), p), dense);
    INFO("L=" << len << " " << diff.str());
    CHECK(diff.rel_l2 <= kTol);
  }
}

TEST_CASE("sla.training-free output is the tile-masked softmax", "[sparse]") {
  for (int64_t len : {300, 1000}) {
    for (const char* text : {"sla:critical=0.05,marginal=0.1", "sla:critical=0.25,marginal=0"}) {
      AttentionParams p = random_qkv(len, 5 + uint64_t(len));
      p.method = sla(text);
      const Tensor got = sattn::attention(ctx(), p);
      const SlaTiles t = sattn::plan_sla(ctx(), p.q, p.k, scale_of(p), p.method.sla, plain_rule(len), kBlockSparseQTile,
                                         kBlockSparseKvTile);
      AttentionParams d = p;
      d.method = sattn::MethodSpec{};
      d.bias = tile_bias(t, p.q.size(0), p.q.size(2));
      const test::Diff diff = test::compare(got, sattn::reference::dense_attention_cpu(ctx(), d));
      INFO(text << " L=" << len << " " << diff.str());
      CHECK(diff.rel_l2 <= kTol);
      // The reference entry point without projection weights is the same computation (attention() runs the
      // tiled CPU executor, the reference the per-row loop: the same sums in another order).
      const test::Diff same = test::compare(sattn::reference::sla_attention_cpu(ctx(), p, t, nullptr, {}), got);
      INFO(same.str());
      CHECK(same.rel_l2 <= 1e-6);
    }
  }
}

TEST_CASE("sla.a call with a token layout plans over its tokens", "[sparse]") {
  // Flux-like: 24 text tokens before a 16 x 20 grid; the dynamic method ignores the grid but keeps the length.
  AttentionParams p = random_qkv(24 + 16 * 20, 3);
  p.tokens.grid[1] = 16, p.tokens.grid[2] = 20, p.tokens.text_len = 24;
  p.method = sla("sla:critical=0.4,marginal=0.2");
  const Tensor got = sattn::attention(ctx(), p);
  AttentionParams plain = p;
  plain.tokens = sattn::TokenLayout{};
  CHECK(test::compare(got, sattn::attention(ctx(), plain)).max_abs == 0);
  CHECK_THAT(sattn::describe_attention(ctx(), p),
             Catch::Contains("sla:critical=0.4,marginal=0.2: cpu block-sparse (dynamic top-k, 3 of 6 key tiles"));
  CHECK_THAT(sattn::describe_attention(ctx(), p), Catch::Contains("marginal tiles skipped"));
  // The stand-in layout has the planned size: 3 of 6 key tiles for every query tile.
  const auto stand_in = sattn::structured_layout(ctx(), p);
  CHECK(sattn::validate(*stand_in) == "");
  CHECK(stand_in->full_index.size() == size_t(3 * stand_in->num_q_tiles()));
  // Padded text has no element mask on critical tiles: refused.
  p.tokens.text_valid = 20;
  CHECK_THAT(sattn::describe_attention(ctx(), p), Catch::Contains("cannot run") && Catch::Contains("padded text"));
}

TEST_CASE("sla.linear branch equals the naive loop", "[sparse]") {
  using sattn::reference::SlaLinearKeys;
  for (int64_t len : {300, 1000}) {
    const AttentionParams p = random_qkv(len, 21 + uint64_t(len));
    const SlaTiles t = sattn::plan_sla(ctx(), p.q, p.k, scale_of(p), sla("sla:critical=0.1,marginal=0.3").sla,
                                       plain_rule(len), kBlockSparseQTile, kBlockSparseKvTile);
    for (SlaLinearKeys keys : {SlaLinearKeys::Marginal, SlaLinearKeys::All}) {
      const Tensor got = sattn::reference::sla_linear_attention_cpu(ctx(), p.q, p.k, p.v, t, keys);
      const test::Diff diff = test::compare(got, naive_linear(p, t, keys));
      INFO("L=" << len << " keys " << int(keys) << " " << diff.str());
      CHECK(diff.rel_l2 <= kTol);
    }
  }
  // No marginal tile: the branch outputs zeros.
  const AttentionParams p = random_qkv(300, 9);
  const SlaTiles t = sattn::plan_sla(ctx(), p.q, p.k, scale_of(p), sla("sla:critical=0.5,marginal=0").sla, plain_rule(300),
                                     kBlockSparseQTile, kBlockSparseKvTile);
  for (float x : sattn::reference::sla_linear_attention_cpu(ctx(), p.q, p.k, p.v, t, SlaLinearKeys::Marginal).to_vector())
    REQUIRE(x == 0.f);
}

TEST_CASE("sla.projection adds O_l times W transposed plus b", "[sparse]") {
  using sattn::reference::SlaLinearKeys;
  AttentionParams p = random_qkv(300, 31);
  const int64_t dv = p.v.size(3);
  const SlaTiles t = sattn::plan_sla(ctx(), p.q, p.k, scale_of(p), sla("sla").sla, plain_rule(300), kBlockSparseQTile,
                                     kBlockSparseKvTile);
  rt::TorchGenerator g(77);
  const sattn::reference::SlaProjection proj{g.randn({dv, dv}), g.randn({dv})};
  for (SlaLinearKeys keys : {SlaLinearKeys::Marginal, SlaLinearKeys::All}) {
    const Tensor got = sattn::reference::sla_attention_cpu(ctx(), p, t, &proj, keys);
    const std::vector<float> os = sattn::reference::block_layout_attention_cpu(ctx(), p, t.layout).to_vector();
    const std::vector<float> ol = naive_linear(p, t, keys).to_vector();
    const std::vector<float> w = proj.weight.to_vector(), bias = proj.bias.to_vector();
    std::vector<float> want(os.size());
    for (size_t r = 0; r < os.size() / size_t(dv); ++r)
      for (int64_t e = 0; e < dv; ++e) {
        double acc = bias[size_t(e)];
        for (int64_t c = 0; c < dv; ++c) acc += double(w[size_t(e * dv + c)]) * ol[r * size_t(dv) + size_t(c)];
        want[r * size_t(dv) + size_t(e)] = os[r * size_t(dv) + size_t(e)] + float(acc);
      }
    const test::Diff diff = test::compare(got, Tensor::from_vector(want, got.shape()));
    INFO(diff.str());
    CHECK(diff.rel_l2 <= kTol);
  }
  // A zero projection (SLA before fine-tuning) leaves the sparse output.
  const sattn::reference::SlaProjection zero{Tensor::from_vector(std::vector<float>(size_t(dv * dv), 0.f), {dv, dv}), {}};
  CHECK(test::compare(sattn::reference::sla_attention_cpu(ctx(), p, t, &zero, SlaLinearKeys::All),
                      sattn::reference::block_layout_attention_cpu(ctx(), p, t.layout))
            .max_abs == 0);
}

TEST_CASE("sla.method note says when the marginal share is ignored", "[sparse]") {
  CHECK_THAT(sattn::method_note(sla("sla:critical=0.05,marginal=0.1")), Catch::Contains("marginal=0.1 is ignored"));
  CHECK(sattn::method_note(sla("sla:critical=0.5,marginal=0")).empty());
  CHECK(sattn::method_note(sla("grat")).empty());
}
