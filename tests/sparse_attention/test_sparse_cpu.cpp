// The CPU references of the structured methods: the explicit-mask definition equals the dense CPU
// reference with an additive -inf bias built from allowed(), and executing a planned BlockLayout equals
// the definition; the tiled CPU executor (kernels/sparse/block_sparse_cpu.h) equals the layout reference.
// Tolerance: relative L2 <= 1e-5 (f32 scores and sums in a different key order).
#include <random>

#include "harness/compare.h"
#include "harness/gpu.h"
#include "random_rules.h"
#include "rng.h"
#include "sparse_attention/kernels/sparse/block_sparse_cpu.h"
#include "sparse_attention/methods/plan.h"
#include "sparse_attention/reference/dense_cpu.h"
#include "sparse_attention/reference/sparse_cpu.h"

#include <catch2/catch.hpp>

using sattn::AttentionParams;
using sattn::MaskRule;

namespace {

constexpr double kTol = 1e-5;

const rt::Context& ctx() { return test::cpu_context(); }

// q, k, v [2, L, 3, ·] with D = 8, Dv = 5; k is a strided view (every other head of a wider tensor).
AttentionParams random_qkv(int64_t len, uint64_t seed) {
  rt::TorchGenerator g(seed);
  AttentionParams p;
  p.q = g.randn({2, len, 3, 8});
  p.k = g.randn({2, len, 6, 8}).slice(2, 0, 3);
  p.v = g.randn({2, len, 3, 5});
  return p;
}

rt::Tensor dense_with_bias(const AttentionParams& p, const MaskRule& rule) {
  const int64_t len = p.q.size(1), heads = p.q.size(2);
  std::vector<float> bias(size_t(heads * len * len));
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < len; ++i)
      for (int64_t j = 0; j < len; ++j) bias[size_t((h * len + i) * len + j)] = sattn::allowed(rule, i, j) ? 0.f : -INFINITY;
  AttentionParams d = p;
  d.bias = rt::Tensor::from_vector(bias, {heads, len, len});
  return sattn::reference::dense_attention_cpu(ctx(), d);
}

void require_close(const rt::Tensor& got, const rt::Tensor& want, const std::string& what) {
  INFO(what);
  const test::Diff diff = test::compare(got, want);
  INFO(diff.str());
  REQUIRE(!diff.nan_mismatch);
  REQUIRE(diff.rel_l2 <= kTol);
}

}  // namespace

TEST_CASE("sparse_cpu.explicit mask equals dense attention with a -inf bias", "[sparse]") {
  std::mt19937 rng(5);
  for (int i = 0; i < 60; ++i) {
    const MaskRule r = test::random_rule(rng, i);
    const AttentionParams p = random_qkv(r.tokens.seq_len(), 100 + i);
    require_close(sattn::reference::masked_attention_cpu(ctx(), p, r), dense_with_bias(p, r), test::describe(r));
  }
}

TEST_CASE("sparse_cpu.planned layouts equal the explicit mask", "[sparse]") {
  std::mt19937 rng(6);
  for (int i = 0; i < 60; ++i) {
    const MaskRule r = test::random_rule(rng, i);
    const AttentionParams p = random_qkv(r.tokens.seq_len(), 200 + i);
    const rt::Tensor want = sattn::reference::masked_attention_cpu(ctx(), p, r);
    const int64_t qt = test::pick(rng, 1, 9), kt = test::pick(rng, 1, 9);
    require_close(sattn::reference::block_layout_attention_cpu(ctx(), p, sattn::plan(r, qt, kt)), want,
                  test::describe(r) + " planned");
    // The exhaustive plan over a random layout order: the permutation must not matter.
    std::vector<int32_t> perm(size_t(r.tokens.seq_len()));
    for (size_t t = 0; t < perm.size(); ++t) perm[t] = int32_t(t);
    std::shuffle(perm.begin(), perm.end(), rng);
    require_close(sattn::reference::block_layout_attention_cpu(ctx(), p, sattn::plan_exhaustive(r, qt, kt, perm)), want,
                  test::describe(r) + " shuffled");
  }
}

TEST_CASE("sparse_cpu.a query with no allowed key outputs zeros", "[sparse]") {
  MaskRule r;  // 2x3 grid after 4 text tokens, none of them real
  r.tokens.grid[1] = 2;
  r.tokens.grid[2] = 3;
  r.tokens.text_len = 4;
  r.tokens.text_valid = 0;
  r.method = sattn::MaskMethod::Group;
  r.group[1] = r.group[2] = 1;
  r.radius = 0;
  const AttentionParams p = random_qkv(r.tokens.seq_len(), 7);
  const rt::Tensor out = sattn::reference::masked_attention_cpu(ctx(), p, r);
  // Text queries see the six grid keys; a grid query sees only itself (groups of one token, radius 0).
  require_close(out, dense_with_bias(p, r), "groups of one");
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 3; ++h)
      for (int64_t c = 0; c < 5; ++c) CHECK(out.at({b, 5, h, c}) == Approx(p.v.at({b, 5, h, c})));

  // A layout that visits no tile for its second query tile (layout positions 5..9): those rows are zeros.
  sattn::BlockLayout l = sattn::plan(r, 5, 5);
  l.full_index.resize(size_t(l.full_offsets[1]));
  l.partial_index.resize(size_t(l.partial_offsets[1]));
  l.full_offsets[2] = l.full_offsets[1];
  l.partial_offsets[2] = l.partial_offsets[1];
  const rt::Tensor rows = sattn::reference::block_layout_attention_cpu(ctx(), p, l);
  for (int64_t pos = 5; pos < 10; ++pos) CHECK(rows.at({1, l.perm.empty() ? pos : l.perm[size_t(pos)], 2, 4}) == 0.f);
}

TEST_CASE("sparse_cpu.the tiled executor equals the layout reference", "[sparse]") {
  std::mt19937 rng(8);
  for (int i = 0; i < 60; ++i) {
    const MaskRule r = test::random_rule(rng, i);
    const AttentionParams p = random_qkv(r.tokens.seq_len(), 300 + i);
    const int64_t qt = test::pick(rng, 1, 9), kt = test::pick(rng, 1, 9);
    std::vector<int32_t> perm(size_t(r.tokens.seq_len()));
    for (size_t t = 0; t < perm.size(); ++t) perm[t] = int32_t(t);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (const sattn::BlockLayout& l : {sattn::plan(r, qt, kt), sattn::plan_exhaustive(r, qt, kt, perm)}) {
      const rt::Tensor want = sattn::reference::block_layout_attention_cpu(ctx(), p, l);
      require_close(sattn::kernels::block_sparse_attention_cpu(ctx(), p, l), want, test::describe(r) + " tiled");
    }
  }
}

TEST_CASE("sparse_cpu.the tiled executor runs per-batch lists and empty query tiles", "[sparse]") {
  MaskRule r;  // GNA 3x3 on a 5x6 grid after 3 text tokens (2 real)
  r.tokens.grid[1] = 5, r.tokens.grid[2] = 6;
  r.tokens.text_len = 3, r.tokens.text_valid = 2;
  r.method = sattn::MaskMethod::Neighborhood;
  r.window[1] = r.window[2] = 3;
  const AttentionParams p = random_qkv(r.tokens.seq_len(), 9);
  const sattn::BlockLayout one = sattn::plan(r, 4, 3);
  // Batch 1 drops every other query tile's first full tile and visits nothing for query tile 1.
  sattn::BlockLayout l = one;
  l.batch = 2;
  l.full_offsets = l.partial_offsets = {0};
  l.full_index.clear(), l.partial_index.clear();
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < one.heads; ++h)
      for (int64_t qt = 0; qt < one.num_q_tiles(); ++qt) {
        const int64_t e = one.entry(0, h, qt);
        std::vector<int32_t> full(one.full_index.begin() + one.full_offsets[size_t(e)],
                                  one.full_index.begin() + one.full_offsets[size_t(e) + 1]);
        std::vector<int32_t> partial(one.partial_index.begin() + one.partial_offsets[size_t(e)],
                                     one.partial_index.begin() + one.partial_offsets[size_t(e) + 1]);
        if (b == 1 && qt % 2 == 0 && !full.empty()) full.erase(full.begin());
        if (b == 1 && qt == 1) full.clear(), partial.clear();
        sattn::append_entry(l, full, partial);
      }
  REQUIRE(sattn::validate(l) == "");
  const rt::Tensor got = sattn::kernels::block_sparse_attention_cpu(ctx(), p, l);
  require_close(got, sattn::reference::block_layout_attention_cpu(ctx(), p, l), "per-batch lists");
  for (int64_t pos = 4; pos < 8; ++pos)
    for (int64_t h = 0; h < 3; ++h) CHECK(got.at({1, l.token(h, pos), h, 2}) == 0.f);
}
