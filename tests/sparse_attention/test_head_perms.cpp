// Per-head layout orders (BlockLayout::head_perm): heads that tile the sequence in different orders. The
// CPU block-layout reference, the tiled CPU executor and the quantized reference without quantization must
// equal dense attention in natural order with each head's visited (query, key) pairs as a -inf bias, and
// validate() must name every malformed per-head field. Tolerance: relative L2 <= 1e-5 (f32 scores, sums in another key order).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "harness/compare.h"
#include "harness/gpu.h"
#include "rng.h"
#include "sparse_attention/kernels/sparse/block_sparse_cpu.h"
#include "sparse_attention/methods/plan.h"
#include "sparse_attention/reference/dense_cpu.h"
#include "sparse_attention/reference/quant_cpu.h"
#include "sparse_attention/reference/sparse_cpu.h"

#include <catch2/catch.hpp>

using sattn::AttentionParams;
using sattn::BlockLayout;
using sattn::MaskRule;

namespace {

const rt::Context& ctx() { return test::cpu_context(); }

// A 6x7 grid after 5 text tokens; a GNA 3x3 rule so partial tiles exist in every order.
MaskRule grid_rule() {
  MaskRule r;
  r.tokens.grid[1] = 6, r.tokens.grid[2] = 7;
  r.tokens.text_len = 5;
  r.tokens.text_valid = 4;
  r.method = sattn::MaskMethod::Neighborhood;
  r.window[1] = r.window[2] = 3;
  return r;
}

// Text in place; the grid row-major (HW) or column-major (WH).
std::vector<int32_t> axis_order(const sattn::TokenLayout& t, bool transposed) {
  std::vector<int32_t> perm(size_t(t.seq_len()));
  std::iota(perm.begin(), perm.end(), 0);
  const int64_t g0 = t.grid_begin(), gh = t.grid[1], gw = t.grid[2];
  if (transposed)
    for (int64_t i = 0; i < gh * gw; ++i) perm[size_t(g0 + i)] = int32_t(g0 + (i % gh) * gw + i / gh);
  return perm;
}

// Heads 0..3 use perm sets {1, 0, 2, 1}: set 0 natural, 1 transposed, 2 a random shuffle. Each head's
// lists are the exhaustive plan of its order, with one key tile dropped from every other query tile so
// that the lists differ from the plan.
BlockLayout per_head_layout(const MaskRule& r, int64_t q_tile, int64_t kv_tile, std::mt19937& rng) {
  std::vector<std::vector<int32_t>> sets = {axis_order(r.tokens, false), axis_order(r.tokens, true),
                                            axis_order(r.tokens, false)};
  std::shuffle(sets[2].begin(), sets[2].end(), rng);
  BlockLayout l;
  l.q_tile = q_tile, l.kv_tile = kv_tile, l.seq_len = r.tokens.seq_len(), l.heads = 4, l.rule = r;
  for (const auto& s : sets) l.perm.insert(l.perm.end(), s.begin(), s.end());
  l.head_perm = {1, 0, 2, 1};
  l.full_offsets = l.partial_offsets = {0};
  for (int64_t h = 0; h < l.heads; ++h) {
    const BlockLayout one = sattn::plan_exhaustive(r, q_tile, kv_tile, sets[size_t(l.head_perm[size_t(h)])]);
    for (int64_t qt = 0; qt < one.num_q_tiles(); ++qt) {
      std::vector<int32_t> full(one.full_index.begin() + one.full_offsets[size_t(qt)],
                                one.full_index.begin() + one.full_offsets[size_t(qt) + 1]);
      std::vector<int32_t> partial(one.partial_index.begin() + one.partial_offsets[size_t(qt)],
                                   one.partial_index.begin() + one.partial_offsets[size_t(qt) + 1]);
      if ((qt + h) % 2 == 1 && !full.empty()) full.erase(full.begin() + int64_t(rng() % full.size()));
      sattn::append_entry(l, full, partial);
    }
  }
  return l;
}

// Dense attention in natural order with bias 0 on the pairs head h visits (allowed() on partial tiles).
rt::Tensor dense_oracle(const AttentionParams& p, const BlockLayout& l) {
  const int64_t len = l.seq_len, heads = p.q.size(2);
  std::vector<float> bias(size_t(heads * len * len), -INFINITY);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t qt = 0; qt < l.num_q_tiles(); ++qt) {
      const int64_t e = l.entry(0, h, qt);
      auto visit = [&](int64_t kt, bool full) {
        for (int64_t qp = qt * l.q_tile; qp < std::min(len, (qt + 1) * l.q_tile); ++qp)
          for (int64_t kp = kt * l.kv_tile; kp < std::min(len, (kt + 1) * l.kv_tile); ++kp) {
            const int64_t qn = l.token(h, qp), kn = l.token(h, kp);
            if (full || sattn::allowed(l.rule, qn, kn)) bias[size_t((h * len + qn) * len + kn)] = 0.f;
          }
      };
      for (int32_t i = l.full_offsets[size_t(e)]; i < l.full_offsets[size_t(e) + 1]; ++i) visit(l.full_index[size_t(i)], true);
      for (int32_t i = l.partial_offsets[size_t(e)]; i < l.partial_offsets[size_t(e) + 1]; ++i)
        visit(l.partial_index[size_t(i)], false);
    }
  AttentionParams d = p;
  d.bias = rt::Tensor::from_vector(bias, {heads, len, len});
  return sattn::reference::dense_attention_cpu(ctx(), d);
}

AttentionParams random_qkv(int64_t len, int64_t heads, uint64_t seed) {
  rt::TorchGenerator g(seed);
  AttentionParams p;
  p.q = g.randn({2, len, heads, 8});
  p.k = g.randn({2, len, heads, 8});
  p.v = g.randn({2, len, heads, 6});
  return p;
}

void require_close(const rt::Tensor& got, const rt::Tensor& want, double tol) {
  const test::Diff diff = test::compare(got, want);
  INFO(diff.str());
  REQUIRE(!diff.nan_mismatch);
  REQUIRE(diff.rel_l2 <= tol);
}

}  // namespace

TEST_CASE("head_perms.cpu reference equals dense masked attention per head", "[sparse]") {
  std::mt19937 rng(11);
  const MaskRule r = grid_rule();
  for (auto [qt, kt] : {std::pair<int64_t, int64_t>{8, 4}, {16, 8}, {5, 7}}) {
    INFO("tiles " << qt << "x" << kt);
    const BlockLayout l = per_head_layout(r, qt, kt, rng);
    REQUIRE(sattn::validate(l) == "");
    const AttentionParams p = random_qkv(l.seq_len, 4, 30 + uint64_t(qt));
    const rt::Tensor want = dense_oracle(p, l);
    require_close(sattn::reference::block_layout_attention_cpu(ctx(), p, l), want, 1e-5);
    require_close(sattn::kernels::block_sparse_attention_cpu(ctx(), p, l), want, 1e-5);  // the tiled executor
    // The quantized reference without quantization runs the same layout in its own loop order.
    require_close(sattn::reference::quant_attention_cpu(ctx(), p, l, sattn::AttnQuant::None), want, 1e-5);
  }
}

TEST_CASE("head_perms.two heads in different orders differ from one order", "[sparse]") {
  // The same lists under head 0's and head 1's orders visit different pairs: the per-head order matters.
  std::mt19937 rng(3);
  const MaskRule r = grid_rule();
  BlockLayout l = per_head_layout(r, 8, 4, rng);
  const AttentionParams p = random_qkv(l.seq_len, 4, 9);
  const rt::Tensor a = sattn::reference::block_layout_attention_cpu(ctx(), p, l);
  l.head_perm = {0, 0, 0, 0};
  const rt::Tensor b = sattn::reference::block_layout_attention_cpu(ctx(), p, l);
  CHECK(test::compare(a, b).rel_l2 > 1e-3);
  require_close(b, dense_oracle(p, l), 1e-5);
}

TEST_CASE("head_perms.validate names malformed per-head fields", "[sparse]") {
  std::mt19937 rng(4);
  const BlockLayout good = per_head_layout(grid_rule(), 8, 4, rng);
  REQUIRE(sattn::validate(good) == "");
  auto broken = [&](auto edit) {
    BlockLayout l = good;
    edit(l);
    return sattn::validate(l);
  };
  CHECK_THAT(broken([](BlockLayout& l) { l.head_perm = {0, 1, 2}; }), Catch::Contains("one per head"));
  CHECK_THAT(broken([](BlockLayout& l) { l.head_perm[2] = 3; }), Catch::Contains("outside the 3 perm sets"));
  CHECK_THAT(broken([](BlockLayout& l) { l.head_perm.clear(); }), Catch::Contains("head_perm is empty"));
  CHECK_THAT(broken([](BlockLayout& l) { l.perm.pop_back(); }), Catch::Contains("multiple of seq_len"));
  CHECK_THAT(broken([](BlockLayout& l) { l.perm[size_t(2 * l.seq_len + 1)] = l.perm[size_t(2 * l.seq_len)]; }),
             Catch::Contains("(perm set 2)"));
  CHECK_THAT(broken([](BlockLayout& l) { l.perm.clear(); }), Catch::Contains("perm is empty"));
  // One layout head: its head_perm entry serves every head of the call.
  BlockLayout one = good;
  one.heads = 1;
  one.head_perm = {1};
  one.full_offsets.resize(size_t(one.num_q_tiles() + 1));
  one.partial_offsets.resize(size_t(one.num_q_tiles() + 1));
  one.full_index.resize(size_t(one.full_offsets.back()));
  one.partial_index.resize(size_t(one.partial_offsets.back()));
  REQUIRE(sattn::validate(one) == "");
  const AttentionParams p = random_qkv(one.seq_len, 3, 5);
  require_close(sattn::reference::block_layout_attention_cpu(ctx(), p, one), [&] {
    BlockLayout wide = one;  // the same lists and order written out per head
    wide.heads = 3;
    wide.head_perm = {1, 1, 1};
    wide.full_offsets = wide.partial_offsets = {0};
    wide.full_index.clear(), wide.partial_index.clear();
    for (int h = 0; h < 3; ++h)
      for (int64_t qt = 0; qt < one.num_q_tiles(); ++qt)
        sattn::append_entry(wide,
                            {one.full_index.begin() + one.full_offsets[size_t(qt)], one.full_index.begin() + one.full_offsets[size_t(qt) + 1]},
                            {one.partial_index.begin() + one.partial_offsets[size_t(qt)],
                             one.partial_index.begin() + one.partial_offsets[size_t(qt) + 1]});
    return dense_oracle(p, wide);
  }(), 1e-5);
}
