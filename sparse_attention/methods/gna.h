// GNA / NATTEN planner (sparse-attention.md §2): the grid re-laid out tile-major in boxes (NATTEN's token
// permute), key tiles from the per-axis windows of each query box (exact, never more than NATTEN-Sim's
// bounding range of §2.2), full tiles where every query of the tile shares a window covering the tile.
#pragma once
#include "sparse_attention/block_layout.h"

namespace sattn {

// The re-layout box for a neighborhood rule: `volume` tokens split over the axes. Of the splits that fit
// the grid (those inside one stride group on every axis when there are any: a query tile's rows then share
// one window), the one with the lowest estimated tile density for key tiles of kv_tile tokens (0: whole
// boxes); ties, and grids smaller than the volume, go to a prime-factor heuristic (each factor to the axis
// where the grown extent divides the stride, else the window, else the smallest; NATTEN's Hopper shapes
// come out this way: 128 -> 16x8 for 2-D strides 16x8). Wan2.1 480p's GNA 9x16x24 / 1x8x8 gets 4x4x8
// (tile density 0.152, against 0.207 for the heuristic's 1x16x8; docs/performance.md, session 13).
void gna_box(const MaskRule& rule, int64_t volume, int64_t box[3], int64_t kv_tile = 0);

// Boxes of gna_box(rule, lcm(q_tile, kv_tile), kv_tile) unless `box` is given.
BlockLayout plan_gna(const MaskRule& rule, int64_t q_tile, int64_t kv_tile, const int64_t* box = nullptr);

}  // namespace sattn
