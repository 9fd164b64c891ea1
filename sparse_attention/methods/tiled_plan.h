// The machinery the analytic planners share: a re-layout of the sequence into segments (grid sub-boxes
// and the text run), tiles cut from the re-laid sequence, and an exact classification of (query tile,
// key tile) pairs from per-box answers of a method, so no planner evaluates the O(L²) element mask.
//
// Re-layout (NATTEN token permute / GRAT clusterify): the grid is cut into boxes of a given shape; the
// boxes that have that full shape come first (row-major over the box grid), then the smaller border boxes
// of grids the shape does not divide (row-major), then the text tokens. Inside a box tokens are row-major
// (t, h, w). With a box volume that is a multiple of both tile sizes, every tile over the full boxes is a
// sub-box of one box; only the tiles at the tail (border boxes, the grid/text seam) mix boxes or text and
// grid. Mixed tiles stay exact: a tile is classified from the boxes it is made of.
#pragma once
#include <cstdint>
#include <vector>

#include "sparse_attention/block_layout.h"

namespace sattn {

// Grid coordinates [lo, hi) per axis (t, h, w).
struct Box {
  int64_t lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
  int64_t volume() const { return (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]); }
};

// What a method says about grid queries and grid keys (text is handled by plan_tiled). For non-empty
// boxes: any = some query of q may attend some key of k; all = every query of q may attend every key of k.
class GridMethod {
 public:
  virtual ~GridMethod() = default;
  virtual bool any(const Box& q, const Box& k) const = 0;
  virtual bool all(const Box& q, const Box& k) const = 0;
  // Boxes whose union holds every grid key that some query of q may attend (a superset is fine: it only
  // costs classification work). Appends to *out.
  virtual void key_regions(const Box& q, std::vector<Box>* out) const = 0;
};

// A run of layout positions [start, start + size): a grid box (tokens row-major inside it) or the text
// segment (natural tokens text_first, text_first + 1, ...).
struct Segment {
  bool text = false;
  Box box;
  int64_t text_first = 0;
  int64_t start = 0, size = 0;
};

struct Relayout {
  std::vector<Segment> segments;   // in layout order
  std::vector<int32_t> perm;       // layout position -> natural token; empty = identity
  int64_t box[3] = {1, 1, 1};      // the box shape
  int64_t box_grid[3] = {0, 0, 0};  // boxes per axis
  std::vector<int32_t> box_segment;  // row-major box-grid index -> segment
};

// Boxes of shape `box` (clipped to the grid), full ones first, text last; `box` = the grid with
// natural_order = true keeps the natural token order (text where the layout puts it; perm empty).
Relayout relayout_boxes(const TokenLayout& tokens, const int64_t box[3], bool natural_order = false);

// The layout of `rule` over `re`, classifying every candidate (query tile, key tile) pair exactly:
// text queries attend every valid key, grid queries the valid text keys and what `method` allows.
BlockLayout plan_tiled(const MaskRule& rule, int64_t q_tile, int64_t kv_tile, const Relayout& re,
                       const GridMethod& method);

}  // namespace sattn
