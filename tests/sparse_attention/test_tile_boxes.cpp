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

TEST_CASE("tile_boxes.identity_and_refusals", "[sparse_attention]") {
  {  // The natural order: usable with no descriptors (tile i is the run from token i · tile).
    const TileBoxes b = sattn::kernels::tile_boxes(planned(1, 23, 29, 41, true, "dense"));
    CHECK(b.usable);
    CHECK(b.q_desc.empty());
    CHECK(b.kv_desc.empty());
  }
  {  // Wan2.1's grid in 3x8x8 groups of 192 tokens: a query tile of 128 cuts a group into a non-box.
    const TileBoxes b = sattn::kernels::tile_boxes(planned(21, 30, 52, 0, true, "grat:variant=B,group=3x8x8"));
    CHECK_FALSE(b.usable);
    CHECK(b.why.find("is not a box of the grid") != std::string::npos);
    CHECK(b.q_desc.empty());
  }
  {  // Border boxes: the 23x29 grid is not a multiple of GRAT's 1x8x16 groups, so some tiles mix groups.
    const TileBoxes b = sattn::kernels::tile_boxes(planned(1, 23, 29, 41, true, "grat:variant=B,group=1x8x16"));
    CHECK_FALSE(b.usable);
  }
  {  // Two perm sets (PARO's per-head orders): not usable.
    BlockLayout l = planned(1, 16, 32, 64, true, "grat:variant=B,group=1x8x16");
    const std::vector<int32_t> one = l.perm;
    l.perm.insert(l.perm.end(), one.begin(), one.end());
    l.heads = 2;
    l.head_perm = {0, 1};
    const TileBoxes b = sattn::kernels::tile_boxes(l);
    CHECK_FALSE(b.usable);
    CHECK(b.why == "the layout has 2 perm sets");
  }
}
