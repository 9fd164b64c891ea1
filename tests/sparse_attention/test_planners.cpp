// The analytic planners (dense, gna, grat) against the exhaustive reference planner on hundreds of small
// random rules: same layout order, so the CSR lists must be equal (visited tiles = tiles with an allowed
// element, full = all-allowed), and every plan valid.
#include <algorithm>
#include <chrono>
#include <random>

#include "sparse_attention/methods/gna.h"
#include "sparse_attention/methods/plan.h"
#include "random_rules.h"

#include <catch2/catch.hpp>

using sattn::BlockLayout;
using sattn::MaskMethod;
using sattn::MaskRule;

using test::pick;
using test::random_gna;
using test::random_grat;
using test::random_tokens;

namespace {

std::string describe(const MaskRule& r, int64_t qt, int64_t kt) {
  return test::describe(r) + " tiles " + std::to_string(qt) + "/" + std::to_string(kt);
}

void require_same_as_exhaustive(const BlockLayout& l, const std::string& what) {
  INFO(what);
  REQUIRE(sattn::validate(l) == "");
  const BlockLayout ref = sattn::plan_exhaustive(l.rule, l.q_tile, l.kv_tile, l.perm);
  REQUIRE(l.full_offsets == ref.full_offsets);
  REQUIRE(l.full_index == ref.full_index);
  REQUIRE(l.partial_offsets == ref.partial_offsets);
  REQUIRE(l.partial_index == ref.partial_index);
}

}  // namespace

TEST_CASE("planners.random rules equal the exhaustive planner", "[sparse]") {
  std::mt19937 rng(1234);
  for (int i = 0; i < 600; ++i) {
    MaskRule r = test::random_rule(rng, i);
    REQUIRE(sattn::rule_error(r) == "");
    const int64_t qt = pick(rng, 1, 12), kt = pick(rng, 1, 12);
    require_same_as_exhaustive(sattn::plan(r, qt, kt), describe(r, qt, kt));
  }
}

TEST_CASE("planners.gna with any re-layout box equals the exhaustive planner", "[sparse]") {
  std::mt19937 rng(99);
  for (int i = 0; i < 200; ++i) {
    MaskRule r = random_tokens(rng, 2 + i % 2);
    random_gna(rng, &r);
    const int64_t box[3] = {pick(rng, 1, 4), pick(rng, 1, 4), pick(rng, 1, 4)};
    const int64_t qt = pick(rng, 1, 16), kt = pick(rng, 1, 16);
    require_same_as_exhaustive(sattn::plan_gna(r, qt, kt, box), describe(r, qt, kt));
  }
}

TEST_CASE("planners.kernel tiles (128 x 64) on grids the boxes do not divide", "[sparse]") {
  std::mt19937 rng(7);
  for (int i = 0; i < 60; ++i) {
    MaskRule r;
    r.tokens.grid[0] = i % 2 ? pick(rng, 2, 5) : 1;
    r.tokens.grid[1] = pick(rng, 5, 23);
    r.tokens.grid[2] = pick(rng, 5, 23);
    r.tokens.text_len = pick(rng, 0, 40);
    r.tokens.text_before = i % 3 != 0;
    r.tokens.text_valid = pick(rng, -1, r.tokens.text_len);
    if (i % 3 == 0) random_gna(rng, &r);
    if (i % 3 == 1) {
      random_grat(rng, &r);
      r.group[1] = r.group[2] = 8;
    }
    require_same_as_exhaustive(sattn::plan(r, 128, 64), describe(r, 128, 64));
  }
}

TEST_CASE("planners.aligned gna and grat are block-sparse: no partial tiles", "[sparse]") {
  // GNA-paper rule: query tiles inside one stride group and key tiles dividing the window (here also at
  // window starts on key-tile boundaries: leader 8k + 4, start 8k - 8) -> every visited tile is full.
  // 32x32 grid, window 24x24, stride 8x8, query tiles 64 (8x8 boxes), key tiles 32 (4x8).
  MaskRule g;
  g.tokens.grid[1] = g.tokens.grid[2] = 32;
  g.method = MaskMethod::Neighborhood;
  g.window[1] = g.window[2] = 24;
  g.stride[1] = g.stride[2] = 8;
  const BlockLayout lg = sattn::plan(g, 64, 32);
  REQUIRE(sattn::validate(lg) == "");
  CHECK(lg.partial_index.empty());
  CHECK(lg.tile_density() == Approx(lg.flop_density()));
  CHECK(lg.flop_density() == Approx(0.5625));  // 24x24 of 32x32 keys per query
  require_same_as_exhaustive(lg, "gna aligned");

  MaskRule x;
  x.tokens.grid[1] = 24;
  x.tokens.grid[2] = 32;
  x.tokens.text_len = 64;
  x.method = MaskMethod::Group;
  x.group[1] = x.group[2] = 8;
  x.criss_cross = true;
  const BlockLayout lx = sattn::plan(x, 64, 32);
  REQUIRE(sattn::validate(lx) == "");
  CHECK(lx.partial_index.empty());
  require_same_as_exhaustive(lx, "grat X aligned");
}

TEST_CASE("planners.gna_box prefers extents dividing the stride, then the window", "[sparse]") {
  MaskRule r;
  r.tokens.grid[1] = r.tokens.grid[2] = 256;
  r.method = MaskMethod::Neighborhood;
  r.window[1] = r.window[2] = 80;
  r.stride[1] = 16;
  r.stride[2] = 8;
  int64_t box[3];
  sattn::gna_box(r, 128, box);
  CHECK((box[0] == 1 && box[1] == 16 && box[2] == 8));
  r.stride[1] = r.stride[2] = 1;  // no stride: boxes dividing the window 80 (16 x 8 or 8 x 16)
  sattn::gna_box(r, 128, box);
  CHECK(box[0] * box[1] * box[2] == 128);
  CHECK((80 % box[1] == 0 && 80 % box[2] == 0));
  r.tokens.grid[1] = 4;  // too small an axis: the box stops at the grid
  r.window[1] = 4;
  sattn::gna_box(r, 128, box);
  CHECK(box[1] <= 4);
}

namespace {

// Of the layout's entries with partial tiles, how many have every partial tile's allowed() pattern equal
// in all the tile's query rows: the entries whose keys upload_layout packs for the sm90ws kernel
// (kernels/sparse/cuda/packed_keys.h), which has its own GPU test. *grid_only: of those with partial tiles,
// how many hold grid queries only.
int64_t row_uniform_entries(const BlockLayout& l, int64_t* with_partial, int64_t* grid_only) {
  int64_t uniform = 0;
  *with_partial = *grid_only = 0;
  for (int64_t qt = 0; qt < l.num_q_tiles(); ++qt) {
    const int32_t begin = l.partial_offsets[size_t(qt)], end = l.partial_offsets[size_t(qt) + 1];
    if (begin == end) continue;
    ++*with_partial;
    const int64_t q0 = qt * l.q_tile, q1 = std::min(l.seq_len, q0 + l.q_tile);
    bool grid = true;
    for (int64_t q = q0; q < q1; ++q) grid = grid && l.rule.tokens.is_grid(l.token(0, q));
    *grid_only += grid;
    bool same = true;
    for (int32_t j = begin; j < end && same; ++j)
      for (int64_t k = l.partial_index[size_t(j)] * l.kv_tile; k < std::min(l.seq_len, (l.partial_index[size_t(j)] + 1) * l.kv_tile); ++k)
        for (int64_t q = q0 + 1; q < q1 && same; ++q)
          same = sattn::allowed(l.rule, l.token(0, q), l.token(0, k)) == sattn::allowed(l.rule, l.token(0, q0), l.token(0, k));
    uniform += same;
  }
  return uniform;
}

}  // namespace

TEST_CASE("planners.gna with a stride that holds the query tile gives row-uniform partial tiles", "[sparse]") {
  // Flux's GNA 1x40x40 stride 1x16x16 on a 64x64 grid with 512 text tokens first: the box (1x8x16) is the
  // query tile and sits in one stride group, so every grid query tile's partial tiles pack (sm90ws walks
  // their allowed keys instead of masking; 0.90x the time at Flux 2048², docs/performance.md session 13).
  MaskRule r;
  r.tokens.grid[1] = r.tokens.grid[2] = 64;
  r.tokens.text_len = 512;
  r.tokens.text_before = true;
  r.method = MaskMethod::Neighborhood;
  r.window[1] = r.window[2] = 40;
  r.stride[1] = r.stride[2] = 16;
  REQUIRE(sattn::rule_error(r) == "");
  int64_t with_partial = 0, grid_only = 0;
  const BlockLayout flux = sattn::plan(r, 128, 64);
  CHECK(row_uniform_entries(flux, &with_partial, &grid_only) == grid_only);
  CHECK(grid_only == 32);  // the 32 query tiles of the grid; the text's tiles attend every key, no partial tile
  CHECK(with_partial == grid_only);
  // Wan2.1's stride 1x8x8 holds 64 tokens: no box of 128 fits in one stride group, so query tiles can mix
  // windows and not every entry packs.
  r.tokens.text_len = 0;
  r.window[1] = 16, r.window[2] = 24;
  r.stride[1] = r.stride[2] = 8;
  REQUIRE(sattn::rule_error(r) == "");
  const BlockLayout wan = sattn::plan(r, 128, 64);
  const int64_t packed = row_uniform_entries(wan, &with_partial, &grid_only);
  INFO("box-uniform entries " << packed << " of " << with_partial);
  CHECK(packed < with_partial);
}

TEST_CASE("planners.gna_box takes the split with the fewest estimated tiles", "[sparse]") {
  MaskRule r;
  r.method = MaskMethod::Neighborhood;
  int64_t box[3];
  auto tiles_of = [&](const int64_t (&b)[3]) { return sattn::plan_gna(r, 128, 64, b).tile_density(); };
  SECTION("Wan2.1 480p GNA 9x16x24 / 1x8x8: 4x4x8, 27% fewer tiles than the heuristic's 1x16x8") {
    r.tokens.grid[0] = 21, r.tokens.grid[1] = 30, r.tokens.grid[2] = 52;
    r.window[0] = 9, r.window[1] = 16, r.window[2] = 24;
    r.stride[1] = r.stride[2] = 8;
    sattn::gna_box(r, 128, box, 64);
    CHECK((box[0] == 4 && box[1] == 4 && box[2] == 8));
    CHECK(tiles_of({4, 4, 8}) < 0.75 * tiles_of({1, 16, 8}));
  }
  SECTION("the embedded model's GNA 1x13x13 at 512²: 1x4x32, every other split of 128 no better") {
    r.tokens.grid[1] = r.tokens.grid[2] = 32;
    r.tokens.text_len = 24;
    r.tokens.text_before = true;
    r.window[1] = r.window[2] = 13;
    sattn::gna_box(r, 128, box, 64);
    CHECK((box[0] == 1 && box[1] == 4 && box[2] == 32));
    const double chosen = tiles_of({1, 4, 32});
    for (int64_t h = 1; h <= 32; h *= 2) {
      const int64_t other[3] = {1, h, 128 / h};
      if (other[2] <= 32) CHECK(chosen <= tiles_of(other));
    }
  }
  SECTION("Flux GNA 1x40x40 / 1x16x16: a box inside one stride group (its query tiles pack)") {
    r.tokens.grid[1] = r.tokens.grid[2] = 128;
    r.tokens.text_len = 512;
    r.window[1] = r.window[2] = 40;
    r.stride[1] = r.stride[2] = 16;
    sattn::gna_box(r, 128, box, 64);
    CHECK((box[0] == 1 && box[1] == 8 && box[2] == 16));
  }
}

TEST_CASE("planners.rule_error says what is wrong", "[sparse]") {
  MaskRule r;
  r.tokens.grid[1] = 8;
  r.tokens.grid[2] = 6;
  r.method = MaskMethod::Neighborhood;
  r.window[2] = 7;
  CHECK_THAT(sattn::rule_error(r), Catch::Contains("larger than the grid's W axis of 6"));
  r.window[2] = 3;
  r.dilation[2] = 3;
  CHECK_THAT(sattn::rule_error(r), Catch::Contains("x dilation 3"));
  r.dilation[2] = 1;
  r.stride[2] = 4;
  CHECK_THAT(sattn::rule_error(r), Catch::Contains("stride 4 is larger than the window 3"));
  r.stride[2] = 1;
  CHECK(sattn::rule_error(r) == "");
  r.tokens.grid[1] = 0;
  CHECK_THAT(sattn::rule_error(r), Catch::Contains("needs a token grid"));
}

TEST_CASE("planners.large grids plan quickly", "[sparse]") {
  // HunyuanVideo 30x48x80 with 256 text tokens (200 real) and Flux 4096² 256x256 + 512 text, at the
  // block-sparse kernel's tiles (128 x 64).
  MaskRule v;
  v.tokens.grid[0] = 30;
  v.tokens.grid[1] = 48;
  v.tokens.grid[2] = 80;
  v.tokens.text_len = 256;
  v.tokens.text_valid = 200;
  v.tokens.text_before = false;
  v.method = MaskMethod::Neighborhood;
  const int64_t w[3] = {18, 24, 24}, s[3] = {16, 8, 8};
  for (int a = 0; a < 3; ++a) v.window[a] = w[a], v.stride[a] = s[a];
  MaskRule f;
  f.tokens.grid[1] = f.tokens.grid[2] = 256;
  f.tokens.text_len = 512;
  f.method = MaskMethod::Group;
  f.group[1] = f.group[2] = 16;
  for (const MaskRule& r : {v, f}) {
    const auto t0 = std::chrono::steady_clock::now();
    const BlockLayout l = sattn::plan(r, 128, 64);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE(sattn::validate(l) == "");
    INFO("tiles " << l.num_q_tiles() << " x " << l.num_kv_tiles() << ", tile density " << l.tile_density() << ", "
                  << secs << " s");
    CHECK(secs < 5.0);
    CHECK(l.tile_density() < 0.2);
  }
}
