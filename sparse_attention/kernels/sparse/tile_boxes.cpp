#include "sparse_attention/kernels/sparse/tile_boxes.h"

#include <algorithm>

namespace sattn::kernels {

namespace {

// Classifies the tiles of `rows` positions of the order `perm` (seq_len entries): fills desc and box, or
// returns why a tile is neither a run nor a grid box of the one shape.
std::string classify(const TokenLayout& tokens, const int32_t* perm, int64_t seq_len, int64_t rows,
                     std::vector<int32_t>* desc, int64_t (&box)[3]) {
  const int64_t tiles = (seq_len + rows - 1) / rows;
  desc->assign(size_t(tiles), 0);
  for (int64_t i = 0; i < tiles; ++i) {
    const int64_t p0 = i * rows, n = std::min(rows, seq_len - p0);
    const int32_t* tok = perm + p0;
    bool run = true;
    for (int64_t j = 1; j < n && run; ++j) run = tok[j] == tok[0] + j;
    if (run) {
      (*desc)[size_t(i)] = tok[0];
      continue;
    }
    const auto fail = [&](const char* what) {
      return "tile " + std::to_string(i) + " of " + std::to_string(rows) + " positions " + what;
    };
    if (n < rows) return fail("is short and not a run of tokens");
    int64_t lo[3] = {INT64_MAX, INT64_MAX, INT64_MAX}, hi[3] = {-1, -1, -1};
    for (int64_t j = 0; j < n; ++j) {
      if (!tokens.is_grid(tok[j])) return fail("mixes text and grid tokens");
      int64_t c[3];
      tokens.coords(tok[j], c);
      for (int a = 0; a < 3; ++a) lo[a] = std::min(lo[a], c[a]), hi[a] = std::max(hi[a], c[a]);
    }
    const int64_t shape[3] = {hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1};
    if (shape[0] * shape[1] * shape[2] != rows) return fail("is not a box of the grid");
    if (box[0] == 0) std::copy(shape, shape + 3, box);
    if (!std::equal(shape, shape + 3, box)) return fail("is a box of another shape than the first");
    // Row-major (t, h, w) inside the box, as the re-layouts order it and a TMA box lands.
    for (int64_t j = 0; j < n; ++j) {
      const int64_t t = lo[0] + j / (shape[1] * shape[2]), h = lo[1] + (j / shape[2]) % shape[1],
                    w = lo[2] + j % shape[2];
      if (tok[j] != tokens.grid_begin() + (t * tokens.grid[1] + h) * tokens.grid[2] + w)
        return fail("is a box whose tokens are not row-major inside it");
    }
    (*desc)[size_t(i)] = int32_t(uint32_t(tok[0]) | kTileBoxGridBit);
  }
  return "";
}

}  // namespace

TileBoxes tile_boxes(const BlockLayout& layout) {
  TileBoxes b;
  if (layout.perm.empty()) {
    b.usable = true;
    return b;
  }
  if (layout.perm_sets() != 1) {
    b.why = "the layout has " + std::to_string(layout.perm_sets()) + " perm sets";
    return b;
  }
  b.why = classify(layout.rule.tokens, layout.perm.data(), layout.seq_len, layout.q_tile, &b.q_desc, b.q_box);
  if (b.why.empty())
    b.why = classify(layout.rule.tokens, layout.perm.data(), layout.seq_len, layout.kv_tile, &b.kv_desc, b.kv_box);
  b.usable = b.why.empty();
  if (!b.usable) b.q_desc.clear(), b.kv_desc.clear();
  return b;
}

}  // namespace sattn::kernels
