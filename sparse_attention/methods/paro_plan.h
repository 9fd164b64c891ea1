// PARO plans (sparse-attention.md §3): per (timestep bucket, layer, head) an axis order of the image grid
// and the key tiles each query tile keeps, calibrated offline by `ditrun calibrate` and loaded by
// `paro:plan=FILE`. The file format is in sparse_attention/README.md ("PARO").
//
// Tiles are the block-sparse kernel's, cut from the whole sequence in layout order: text stays in place,
// the grid is laid out in the head's axis order. "Image tiles" are the tiles whose positions are all grid
// tokens; the plan's masks cover image query tiles x image key tiles, and every tile that holds a text
// token is always visited (text queries attend every key, every query attends the text).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "sparse_attention/mask_rule.h"

namespace sattn {

inline constexpr int kParoFormatVersion = 1;
inline constexpr int kParoDefaultBuckets = 10;

// Axis orders of the grid, slowest axis first, as indices into [T, H, W]. Images (T == 1) use the first
// two ("HW" row-major = natural, "WH" column-major); videos all six.
struct AxisOrder {
  int axes[3];
  const char* name;  // "THW", "TWH", ... ; for images "HW", "WH"
};
// The candidate orders of a grid: {HW, WH} when T == 1, else the six orders of T, H, W (THW first).
std::vector<AxisOrder> axis_orders(const int64_t grid[3]);
// Layout position -> natural token for one order: text in place, the grid in `order`.
std::vector<int32_t> axis_order_perm(const TokenLayout& tokens, const AxisOrder& order);

// Image tile ranges of a token layout at tile size `tile`: tiles [begin, end) are entirely grid tokens.
struct TileRange {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end > begin ? end - begin : 0; }
};
TileRange image_tiles(const TokenLayout& tokens, int64_t tile);

// The timestep bucket of denoising step `step` of `num_steps` (PARO's released rule, generalized to
// `buckets`): int((step + 1) / num_steps * buckets), clamped to [0, buckets - 1]. An unknown step (< 0
// or num_steps <= 0) is bucket 0.
int paro_bucket(int step, int num_steps, int buckets);

struct ParoPlan {
  // Model fingerprint.
  int64_t layers = 0, heads = 0, head_dim = 0;
  // The sequence it was calibrated for: grid [T, H, W], text length and place (text_valid is not part).
  TokenLayout tokens;
  int64_t q_tile = 0, kv_tile = 0;
  int buckets = kParoDefaultBuckets;
  // Provenance (not checked on load).
  double density = 0;  // requested kept share of image-image elements
  int steps = 0, prompts = 0;
  // Per record r = (bucket · layers + layer) · heads + head: the order (index into axis_orders(grid)) and
  // the kept image key tiles of each image query tile, row-major [image q tiles, image kv tiles], 0/1.
  std::vector<uint8_t> order;
  std::vector<uint8_t> keep;

  int64_t records() const { return int64_t(buckets) * layers * heads; }
  int64_t record(int bucket, int64_t layer, int64_t head) const { return (int64_t(bucket) * layers + layer) * heads + head; }
  int64_t mask_rows() const { return image_tiles(tokens, q_tile).size(); }
  int64_t mask_cols() const { return image_tiles(tokens, kv_tile).size(); }
  const uint8_t* mask(int64_t r) const { return keep.data() + r * mask_rows() * mask_cols(); }
  // Kept share of image-image elements over every record (tiles weighted by their tokens).
  double image_density() const;
  // Fingerprint and text of the calibration size for messages: "4 heads x 64 over 6 layers, 16x16 grid + 24 text tokens".
  std::string describe() const;
};

// "" when plan is self-consistent (sizes, orders in range, every image query tile keeps a tile), else why.
std::string validate(const ParoPlan& plan);

// Writes atomically (a temporary file in the same folder, then rename); refuses an existing file unless
// overwrite.
rt::Status write_paro_plan(const ParoPlan& plan, const std::string& path, bool overwrite);
// Reads and validates; errors name the file and what is wrong.
rt::Result<ParoPlan> read_paro_plan(const std::string& path);

// "" when the plan fits a call over `tokens` (grid, text length and place equal the calibration's), else a
// message for users: "plan calibrated for a 64x64 grid, this run has 32x32: run ditrun calibrate at this size".
std::string paro_tokens_error(const ParoPlan& plan, const TokenLayout& tokens);
// "" when the plan fits the model, else which of layers, heads and head dim differ.
std::string paro_model_error(const ParoPlan& plan, int64_t layers, int64_t heads, int64_t head_dim);

}  // namespace sattn
