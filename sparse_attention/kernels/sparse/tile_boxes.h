// Which tiles of a layout one TMA copy can load from the natural-order q, k and v: a tile whose layout
// positions hold consecutive tokens (the text, or any tile of the identity order) is a run of rows; a tile
// that holds a sub-box of the grid, row-major (t, h, w) inside it as the box re-layouts put it
// (methods/tiled_plan.h), is a box of a 5-D view of the grid. The sm90ws kernel loads such tiles with one
// thread's TMA copies instead of 128 threads' row gathers through perm (block_sparse_sm90ws.cu).
// Plain C++: the classification is host work at upload time, tested on the CPU.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sparse_attention/block_layout.h"

namespace sattn::kernels {

// A tile's descriptor: its first natural token, with this bit set when the tile is a grid box (else a run).
inline constexpr uint32_t kTileBoxGridBit = 0x80000000u;

struct TileBoxes {
  // Every query tile and every key tile of the layout is a run or a grid box (of one shape per tile size).
  bool usable = false;
  std::string why;  // when not usable: the first tile that is neither, in words
  // The grid boxes' shapes (t, h, w) for query tiles and key tiles; zeros where no tile is a grid box.
  int64_t q_box[3] = {0, 0, 0}, kv_box[3] = {0, 0, 0};
  // Per tile, its descriptor (kTileBoxGridBit | first token, or the first token of a run). Empty for the
  // identity order, where tile i is the run from token i · tile.
  std::vector<int32_t> q_desc, kv_desc;
};

// The classification of `layout`'s tiles (q_tile and kv_tile positions each; the last tile may be shorter,
// and is a run whose copy reads past its positions: rows past the sequence end arrive as zeros, other rows
// are finite tokens its masks leave out). Layouts with more than one perm set are not usable.
TileBoxes tile_boxes(const BlockLayout& layout);

}  // namespace sattn::kernels
