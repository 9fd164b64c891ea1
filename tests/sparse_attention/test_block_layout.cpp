// BlockLayout's validate() and densities, and the exhaustive reference planner on hand-checked cases.
#include <numeric>

#include "sparse_attention/methods/plan.h"

#include <catch2/catch.hpp>

using sattn::BlockLayout;
using sattn::MaskMethod;
using sattn::MaskRule;

namespace {

MaskRule plain(int64_t len) {
  MaskRule r;
  r.tokens.grid[1] = 0;
  r.tokens.text_len = len;
  return r;
}

// A 1-D neighborhood over W tokens (grid 1 x 1 x W).
MaskRule line(int64_t w, int64_t window, int64_t stride = 1, int64_t dilation = 1, bool causal = false) {
  MaskRule r;
  r.tokens.grid[1] = 1;
  r.tokens.grid[2] = w;
  r.method = MaskMethod::Neighborhood;
  r.window[2] = window;
  r.stride[2] = stride;
  r.dilation[2] = dilation;
  r.causal[2] = causal;
  return r;
}

std::vector<int32_t> list(const BlockLayout& l, bool full, int64_t e) {
  const auto& off = full ? l.full_offsets : l.partial_offsets;
  const auto& idx = full ? l.full_index : l.partial_index;
  return {idx.begin() + off[size_t(e)], idx.begin() + off[size_t(e) + 1]};
}

}  // namespace

TEST_CASE("block_layout.dense plain sequence: every tile full, last tile shorter", "[sparse]") {
  const BlockLayout l = sattn::plan_exhaustive(plain(10), 4, 3);
  REQUIRE(sattn::validate(l).empty());
  REQUIRE(l.num_q_tiles() == 3);
  REQUIRE(l.num_kv_tiles() == 4);
  for (int64_t e = 0; e < 3; ++e) {
    CHECK(list(l, true, e) == std::vector<int32_t>{0, 1, 2, 3});
    CHECK(list(l, false, e).empty());
  }
  CHECK(l.tile_density() == Approx(1.0));
  CHECK(l.flop_density() == Approx(1.0));
}

TEST_CASE("block_layout.1-D window of 3 over 8 tokens, tiles of 2", "[sparse]") {
  // Windows (shifted at the borders): 0,1 -> [0,3); i -> [i-1, i+2); 6,7 -> [5,8).
  const BlockLayout l = sattn::plan_exhaustive(line(8, 3), 2, 2);
  REQUIRE(sattn::validate(l).empty());
  CHECK(list(l, true, 0) == std::vector<int32_t>{0});     // queries 0,1 both see keys 0,1
  CHECK(list(l, false, 0) == std::vector<int32_t>{1});    // key 2 only
  CHECK(list(l, true, 1) == std::vector<int32_t>{1});     // queries 2,3 see [1,4), [2,5)
  CHECK(list(l, false, 1) == std::vector<int32_t>{0, 2});
  CHECK(list(l, true, 3) == std::vector<int32_t>{3});
  CHECK(list(l, false, 3) == std::vector<int32_t>{2});
  // Allowed elements: 8 queries x 3 keys of 64; visited: 2x2 elements per listed pair.
  CHECK(l.flop_density() == Approx(24.0 / 64.0));
  CHECK(l.tile_density() == Approx(4.0 * 10 / 64.0));
}

TEST_CASE("block_layout.padded text keys are skipped for every query", "[sparse]") {
  MaskRule r = plain(0);
  r.tokens.grid[0] = 1;
  r.tokens.grid[1] = 2;
  r.tokens.grid[2] = 3;  // 6 grid tokens after 6 text tokens, 4 of them real
  r.tokens.text_len = 6;
  r.tokens.text_valid = 4;
  const BlockLayout l = sattn::plan_exhaustive(r, 4, 2);
  REQUIRE(sattn::validate(l).empty());
  for (int64_t e = 0; e < l.num_q_tiles(); ++e) {
    CHECK(list(l, true, e) == std::vector<int32_t>{0, 1, 3, 4, 5});
    CHECK(list(l, false, e).empty());
  }
  CHECK(l.flop_density() == Approx(10.0 / 12.0));
}

TEST_CASE("block_layout.plan_exhaustive follows the permutation", "[sparse]") {
  // Reversing a causal 1-D sequence: layout position p holds token 7 - p.
  std::vector<int32_t> perm(8);
  std::iota(perm.rbegin(), perm.rend(), 0);
  const BlockLayout l = sattn::plan_exhaustive(line(8, 8, 1, 1, true), 4, 4, perm);
  REQUIRE(sattn::validate(l).empty());
  // Tile 0 holds tokens 7..4 (they see every token up to themselves), tile 1 tokens 3..0.
  CHECK(list(l, true, 0) == std::vector<int32_t>{1});
  CHECK(list(l, false, 0) == std::vector<int32_t>{0});
  CHECK(list(l, true, 1).empty());
  CHECK(list(l, false, 1) == std::vector<int32_t>{1});
}

TEST_CASE("block_layout.validate names what is wrong", "[sparse]") {
  const BlockLayout good = sattn::plan_exhaustive(line(8, 3), 2, 2);
  REQUIRE(sattn::validate(good).empty());
  auto broken = [&](auto edit) {
    BlockLayout l = good;
    edit(l);
    return sattn::validate(l);
  };
  CHECK_THAT(broken([](BlockLayout& l) { l.partial_index[1] = l.partial_index[2]; }), Catch::Contains("ascending"));
  CHECK_THAT(broken([](BlockLayout& l) { l.full_index[0] = 9; }), Catch::Contains("outside"));
  CHECK_THAT(broken([](BlockLayout& l) { l.full_offsets.pop_back(); }), Catch::Contains("entries + 1"));
  CHECK_THAT(broken([](BlockLayout& l) { l.partial_offsets.back() = 1; }), Catch::Contains("ends at"));
  CHECK_THAT(broken([](BlockLayout& l) { l.partial_index[0] = 0; }), Catch::Contains("both full and partial"));
  CHECK_THAT(broken([](BlockLayout& l) { l.perm = {0, 1, 2, 3, 4, 5, 6, 6}; }), Catch::Contains("twice"));
  CHECK_THAT(broken([](BlockLayout& l) { l.perm = {0, 1}; }), Catch::Contains("perm has"));
  CHECK_THAT(broken([](BlockLayout& l) { l.kv_tile = 0; }), Catch::Contains("positive"));
  CHECK_THAT(broken([](BlockLayout& l) { l.seq_len = 9; }), Catch::Contains("token layout"));
}
