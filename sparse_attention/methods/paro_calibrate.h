// PARO calibration (`ditrun calibrate`): an AttentionObserver that, for every attention call it sees,
// accumulates per (timestep bucket, layer, head, candidate axis order) the post-softmax block sums of
// P = softmax(scale · q · kᵀ) over image query tiles x image key tiles (tiles cut in that order), then
// turns them into a ParoPlan.
//
// Statistics op: paro_block_sums. On the CPU it is the reference (plain loops, f32 scores, double sums); on a
// GPU the same sums as matrix products on the device (paro_block_sums_matmul), so q and k never leave it.
#pragma once
#include <vector>

#include "sparse_attention/attention.h"
#include "sparse_attention/methods/paro_plan.h"

namespace sattn {

// Adds, for batch entries of q, k [B, L, H, D] (host f32, or any dtype on a GPU; L = tokens.seq_len()), the sums
// of P over each (image query tile, image key tile) block in each candidate order to acc, laid out
// [orders][H][mask_rows][mask_cols] (axis_orders(tokens.grid), image_tiles at q_tile / kv_tile). Rows of P
// are full softmax rows (every key, text included); only image-image blocks are kept.
void paro_block_sums(const rt::Context& ctx, const rt::Tensor& q, const rt::Tensor& k, float scale,
                     const TokenLayout& tokens, int64_t q_tile, int64_t kv_tile, std::vector<double>& acc);

// The same sums from device ops on any backend: per (batch, head) P = softmax(scale · q_img · kᵀ) in f32, then
// per order Aᵀ · P[:, image keys] · B with A, B the image tokens' 0/1 query- and key-tile memberships. q and k
// may be bf16/f16/f32 on the context's device; sums accumulate in double on the host. P is made for at most
// rows_per_chunk query rows at a time (0: as many as keep it under 2^28 elements, 1 GiB).
void paro_block_sums_matmul(const rt::Context& ctx, const rt::Tensor& q, const rt::Tensor& k, float scale,
                            const TokenLayout& tokens, int64_t q_tile, int64_t kv_tile, std::vector<double>& acc,
                            int64_t rows_per_chunk = 0);

// Per query tile row of `sums` [rows, cols] the kept tiles at `density`: the diagonal tile (of the image
// key tiles overlapping the query tile's positions, the one with the largest sum) plus the largest-sum
// tiles up to max(1, round(density · cols)) per row. Returns 0/1 [rows, cols].
std::vector<uint8_t> paro_keep(const std::vector<double>& sums, int64_t rows, int64_t cols, double density,
                               const TokenLayout& tokens, int64_t q_tile, int64_t kv_tile);

class ParoCalibrator : public AttentionObserver {
 public:
  // layers: the model's attention layers; num_steps: denoising steps per prompt.
  ParoCalibrator(int64_t layers, int num_steps, int buckets, int64_t q_tile, int64_t kv_tile);
  void observe(const rt::Context& ctx, const AttentionParams& p) override;
  // The plan at `density`: per (bucket, layer, head) the order whose kept blocks capture the largest share
  // of the image-image attention mass, and its kept tiles. Buckets no step fell into copy the nearest
  // calibrated bucket below (else above). CHECKs that some call was observed.
  ParoPlan plan(double density, int prompts) const;
  int64_t calls() const { return calls_; }

 private:
  int64_t layers_;
  int num_steps_, buckets_;
  int64_t q_tile_, kv_tile_;
  int64_t heads_ = 0, head_dim_ = 0, calls_ = 0;
  TokenLayout tokens_;
  std::vector<std::vector<double>> sums_;  // per (bucket, layer): [orders][heads][rows][cols]
  std::vector<int64_t> counts_;            // observed calls per (bucket, layer)
};

}  // namespace sattn
