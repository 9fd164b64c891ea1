// GRAT planner (sparse-attention.md §1): the grid re-laid out group-major (GRAT's clusterify: each group
// of g_t x g_h x g_w tokens contiguous), key tiles = the tiles of the query group's key groups (variant B:
// groups within `radius` group steps on every axis, clipped at the borders; variant X: the groups sharing
// the query group's index on an axis with more than one group). With group volumes that are multiples of
// the tiles, every visited grid tile is full.
#pragma once
#include "sparse_attention/block_layout.h"

namespace sattn {

BlockLayout plan_grat(const MaskRule& rule, int64_t q_tile, int64_t kv_tile);

}  // namespace sattn
