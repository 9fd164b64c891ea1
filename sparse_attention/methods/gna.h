// GNA / NATTEN planner (sparse-attention.md §2): the grid re-laid out tile-major in boxes (NATTEN's token
// permute), key tiles from the per-axis windows of each query box (exact, never more than NATTEN-Sim's
// bounding range of §2.2), full tiles where every query of the tile shares a window covering the tile.
#pragma once
#include "sparse_attention/block_layout.h"

namespace sattn {

// The re-layout box for a neighborhood rule: `volume` tokens (fewer when the grid is smaller) split over
// the axes by prime factors, each factor going to the axis where the grown box extent divides the stride
// (query tiles inside one stride group: block-sparse), else divides the window, else the smallest extent
// (ties: the faster axis). NATTEN's Hopper shapes come out this way: 128 -> 16x8 for 2-D strides 16x8.
void gna_box(const MaskRule& rule, int64_t volume, int64_t box[3]);

// Boxes of gna_box(rule, lcm(q_tile, kv_tile)) unless `box` is given.
BlockLayout plan_gna(const MaskRule& rule, int64_t q_tile, int64_t kv_tile, const int64_t* box = nullptr);

}  // namespace sattn
