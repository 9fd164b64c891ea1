// tile_boxes (kernels/sparse/tile_boxes.h): which tiles of a layout the sm90ws kernel loads as TMA boxes. The
// descriptors are checked against the tokens they must name, computed here from the layout's perm.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "sparse_attention/kernels/sparse/block_sparse.h"
#include "sparse_attention/kernels/sparse/tile_boxes.h"
#include "sparse_attention/methods/method_spec.h"
#include "sparse_attention/methods/plan.h"

#include <catch2/catch.hpp>

using sattn::BlockLayout;
using sattn::kernels::kTileBoxGridBit;
using sattn::kernels::kTileGather;
using sattn::kernels::TileBoxes;

namespace {

BlockLayout planned(int64_t t, int64_t h, int64_t w, int64_t text, bool text_before, const char* method) {
  sattn::TokenLayout tokens;
  tokens.grid[0] = t, tokens.grid[1] = h, tokens.grid[2] = w;
  tokens.text_len = text, tokens.text_before = text_before;
  const auto spec = sattn::parse_method(method);
  REQUIRE(spec);
  return sattn::plan(spec->for_tokens(tokens), sattn::kernels::kBlockSparseQTile, sattn::kernels::kBlockSparseKvTile);
}

// Every descriptor names its tile's first token, and the grid bit is set exactly where the tile's tokens
// are not consecutive; returns how many tiles are grid boxes.
int64_t check_descriptors(const BlockLayout& l, const std::vector<int32_t>& desc, int64_t rows) {
  REQUIRE(int64_t(desc.size()) == (l.seq_len + rows - 1) / rows);
  int64_t boxes = 0;
  for (int64_t i = 0; i < int64_t(desc.size()); ++i) {
    const int64_t p0 = i * rows, n = std::min(rows, l.seq_len - p0);
    bool run = true;
    for (int64_t j = 1; j < n; ++j) run = run && l.perm[size_t(p0 + j)] == l.perm[size_t(p0)] + j;
    const uint32_t d = uint32_t(desc[size_t(i)]);
    CHECK(int64_t(d & ~kTileBoxGridBit) == l.perm[size_t(p0)]);
    CHECK(((d & kTileBoxGridBit) == 0) == run);
    boxes += !run;
  }
  return boxes;
}

// Whether tile i's tokens (rows positions of l.perm) are a box of `shape` (t, h, w), row-major inside it.
bool is_box(const BlockLayout& l, int64_t i, int64_t rows, const int64_t (&shape)[3]) {
  const sattn::TokenLayout& tok = l.rule.tokens;
  const int64_t p0 = i * rows;
  if (p0 + rows > l.seq_len || !tok.is_grid(l.perm[size_t(p0)])) return false;
  int64_t c0[3];
  tok.coords(l.perm[size_t(p0)], c0);
  for (int64_t j = 0; j < rows; ++j) {
    const int64_t t = c0[0] + j / (shape[1] * shape[2]), h = c0[1] + (j / shape[2]) % shape[1], w = c0[2] + j % shape[2];
    if (t >= tok.grid[0] || h >= tok.grid[1] || w >= tok.grid[2]) return false;
    if (l.perm[size_t(p0 + j)] != tok.grid_begin() + (t * tok.grid[1] + h) * tok.grid[2] + w) return false;
  }
  return true;
}

// A mixed layout's descriptors: a run's first token, a box's first token with the grid bit, kTileGather
// exactly where the tile is neither; returns how many tiles gather.
int64_t check_mixed(const BlockLayout& l, const std::vector<int32_t>& desc, int64_t rows, const int64_t (&shape)[3]) {
  REQUIRE(int64_t(desc.size()) == (l.seq_len + rows - 1) / rows);
  int64_t gathered = 0;
  for (int64_t i = 0; i < int64_t(desc.size()); ++i) {
    const int64_t p0 = i * rows, n = std::min(rows, l.seq_len - p0);
    bool run = true;
    for (int64_t j = 1; j < n; ++j) run = run && l.perm[size_t(p0 + j)] == l.perm[size_t(p0)] + j;
    INFO("tile " << i << " of " << rows);
    if (run) {
      CHECK(desc[size_t(i)] == l.perm[size_t(p0)]);
    } else if (is_box(l, i, rows, shape)) {
      CHECK(uint32_t(desc[size_t(i)]) == (uint32_t(l.perm[size_t(p0)]) | kTileBoxGridBit));
    } else {
      CHECK(desc[size_t(i)] == kTileGather);
      ++gathered;
    }
  }
  return gathered;
}

}  // namespace

TEST_CASE("tile_boxes.flux_like_layouts", "[sparse_attention]") {
  // Flux at 2048² (128x128 grid, 512 text tokens first): GRAT and GNA re-lay the grid in 1x8x16 boxes, so a
  // query tile is a box and a key tile its upper or lower half; the text is runs.
  for (const char* method : {"grat:variant=B,group=1x16x16", "gna:window=1x40x40,stride=1x16x16"}) {
    const BlockLayout l = planned(1, 128, 128, 512, true, method);
    const TileBoxes b = sattn::kernels::tile_boxes(l);
    INFO(method << ": " << b.why);
    REQUIRE(b.usable);
    CHECK((b.q_box[0] == 1 && b.q_box[1] == 8 && b.q_box[2] == 16));
    CHECK((b.kv_box[0] == 1 && b.kv_box[1] == 4 && b.kv_box[2] == 16));
    CHECK(check_descriptors(l, b.q_desc, l.q_tile) == 128 * 128 / 128);
    CHECK(check_descriptors(l, b.kv_desc, l.kv_tile) == 128 * 128 / 64);
  }
}

TEST_CASE("tile_boxes.video_boxes_and_ragged_runs", "[sparse_attention]") {
  // A 4x8x16 grid with 24 text tokens after it (L = 536: the last query and key tiles are short text runs).
  const BlockLayout l = planned(4, 8, 16, 24, false, "gna:window=3x5x7,stride=1x1x1");
  const TileBoxes b = sattn::kernels::tile_boxes(l);
  INFO(b.why);
  REQUIRE(b.usable);
  CHECK(b.q_box[0] * b.q_box[1] * b.q_box[2] == 128);
  CHECK(b.kv_box[0] * b.kv_box[1] * b.kv_box[2] == 64);
  CHECK(b.q_box[0] > 1);  // boxes across frames
  CHECK(check_descriptors(l, b.q_desc, l.q_tile) == 4 * 8 * 16 / 128);
  CHECK(check_descriptors(l, b.kv_desc, l.kv_tile) == 4 * 8 * 16 / 64);
}

TEST_CASE("tile_boxes.identity_mixed_and_refusals", "[sparse_attention]") {
  {  // The natural order: usable with no descriptors (tile i is the run from token i · tile).
    const TileBoxes b = sattn::kernels::tile_boxes(planned(1, 23, 29, 41, true, "dense"));
    CHECK(b.usable);
    CHECK_FALSE(b.mixed);
    CHECK(b.q_desc.empty());
    CHECK(b.kv_desc.empty());
  }
  {  // Wan2.1's grid in 3x8x8 groups of 192 tokens: a query tile of 128 in every second pair cuts two groups,
     // and the border groups (30 = 3·8 + 6 rows, 52 = 6·8 + 4 columns) mix; the key tiles of whole groups
     // are 1x8x8 boxes. Mixed: 2/3 of the whole groups' query tiles and all their key tiles by TMA.
    const BlockLayout l = planned(21, 30, 52, 0, true, "grat:variant=B,group=3x8x8");
    const TileBoxes b = sattn::kernels::tile_boxes(l);
    CHECK_FALSE(b.usable);
    CHECK(b.mixed);
    CHECK(b.why.find("is not a box of the grid") != std::string::npos);
    CHECK((b.q_box[0] == 2 && b.q_box[1] == 8 && b.q_box[2] == 8));
    CHECK((b.kv_box[0] == 1 && b.kv_box[1] == 8 && b.kv_box[2] == 8));
    const int64_t whole = 7 * 3 * 6 * 192;  // tokens in whole groups
    const int64_t q_gathered = check_mixed(l, b.q_desc, l.q_tile, b.q_box);
    const int64_t kv_gathered = check_mixed(l, b.kv_desc, l.kv_tile, b.kv_box);
    CHECK(q_gathered == b.q_gathered);
    CHECK(kv_gathered == b.kv_gathered);
    CHECK(int64_t(b.q_desc.size()) - q_gathered == whole / 192);  // two boxes per pair of whole groups
    CHECK(int64_t(b.kv_desc.size()) - kv_gathered == whole / 64);
    CHECK(kv_gathered > 0);
  }
  {  // Border boxes: the 23x29 grid is not a multiple of GRAT's 1x8x16 groups, so some tiles mix groups.
    const BlockLayout l = planned(1, 23, 29, 41, true, "grat:variant=B,group=1x8x16");
    const TileBoxes b = sattn::kernels::tile_boxes(l);
    CHECK_FALSE(b.usable);
    CHECK(b.mixed);
    CHECK(check_mixed(l, b.q_desc, l.q_tile, b.q_box) == b.q_gathered);
    CHECK(check_mixed(l, b.kv_desc, l.kv_tile, b.kv_box) == b.kv_gathered);
    CHECK(b.kv_gathered > 0);
  }
  {  // Two perm sets (PARO's per-head orders): not usable.
    BlockLayout l = planned(1, 16, 32, 64, true, "grat:variant=B,group=1x8x16");
    const std::vector<int32_t> one = l.perm;
    l.perm.insert(l.perm.end(), one.begin(), one.end());
    l.heads = 2;
    l.head_perm = {0, 1};
    const TileBoxes b = sattn::kernels::tile_boxes(l);
    CHECK_FALSE(b.usable);
    CHECK_FALSE(b.mixed);
    CHECK(b.q_desc.empty());
    CHECK(b.why == "the layout has 2 perm sets");
  }
}
