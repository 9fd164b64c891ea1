// The block-sparse flash-attention kernel: executes a BlockLayout (block_layout.h) on the GPU. Planners ask
// for its tile sizes here, and block_sparse_refusal says (in every build) whether it can run a call.
// Plain C++ header; the kernel itself (cuda/block_sparse.cu) exists only in CUDA builds.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "sparse_attention/attention.h"
#include "sparse_attention/block_layout.h"

namespace sattn::kernels {

// The tiles the kernel runs: a layout must be planned with q_tile = kBlockSparseQTile and
// kv_tile = kBlockSparseKvTile (both head dims use the same tiles, so a plan does not depend on D).
inline constexpr int64_t kBlockSparseQTile = 128;
inline constexpr int64_t kBlockSparseKvTile = 64;

inline constexpr bool block_sparse_head_dim_supported(int64_t d) { return d == 64 || d == 128; }

// "" when block_sparse_attention runs (p, layout), else why not: bf16/f16 GPU tensors, Lq == Lk ==
// layout.seq_len, D == Dv in {64, 128}, no bias or causal mask (the layout is the mask), the kernel's
// tiles, layout batch/heads of 1 or the call's. Does not check the CSR lists (validate() does).
std::string block_sparse_refusal(const AttentionParams& p, const BlockLayout& layout);

namespace cuda {

// "" when the wgmma kernel (cuda/block_sparse_sm90.cu) runs (p, layout) on ctx's device: everything
// block_sparse_refusal asks, plus block_sparse_sm90_device_refusal.
std::string block_sparse_sm90_refusal(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& layout);
// "" when ctx's device can run the wgmma kernel (Sm90), else why not: the binary must hold
// sm_90a code and the device must be of compute capability 9.0 (wgmma exists on sm_90a only, not on later
// architectures).
std::string block_sparse_sm90_device_refusal(const rt::Context& ctx);

// The kernel block_sparse_attention runs for p.sparse_kernel: Sm80, Sm90 or Sm90Ws (the same device checks
// as Sm90), or std::nullopt with the reason in *why when the requested kernel cannot run (or
// block_sparse_refusal refuses the call). Auto takes Sm90Ws where the wgmma kernels can run (0.37-0.51x Sm80's
// time on the H200, within the same tolerance; Sm90 bit-identical to Sm80 in 0.59-0.76x, docs/performance.md),
// else Sm80; *why then says
// why the wgmma kernels were passed over ("" when they were not considered). The one selector behind
// both the dispatch and the callers' questions.
std::optional<SparseKernel> select_block_sparse_kernel(const rt::Context& ctx, const AttentionParams& p,
                                                       const BlockLayout& layout, std::string* why);

// The layout on the GPU: its int32 arrays in one buffer (typed f32 because rt::DType has no int32, never
// read as floats), and the element mask of every partial tile (kBlockSparseQTile 64-bit rows per listed
// partial tile, from allowed() through perm, computed by a GPU kernel; from those, the packed keys of the
// entries whose partial tiles have one mask per query tile, cuda/packed_keys.h). upload_layout CHECKs
// validate(layout) first: the kernel trusts the lists. The copy comes from pageable host memory (the driver
// may synchronize with the stream, and it cannot be captured into a CUDA graph) and the masks cost one
// allowed() evaluation per element of every partial tile, so callers that run one layout many times
// should upload it once, keep it beside the layout (e.g. in the plan cache) and pass it in.
struct UploadedLayout {
  rt::Tensor buffer, masks;
  const int32_t *perm = nullptr, *full_offsets = nullptr, *full_index = nullptr, *partial_offsets = nullptr,
                *partial_index = nullptr;  // perm: nullptr = identity (all perm sets of layout.perm)
  const int32_t* head_perm = nullptr;      // layout.head_perm; nullptr = one perm set for every head
  const uint64_t* partial_masks = nullptr;
  // The entries whose partial tiles the sm90ws kernel walks as packed keys (cuda/packed_keys.h); nullptr:
  // none (device-planned layouts, which have no partial tiles).
  rt::Tensor packed_entry_buf, packed_keys_buf;
  const int32_t *packed_entry = nullptr, *packed_keys = nullptr;
  // The tiles one TMA copy loads (tile_boxes.h), for the sm90ws kernel: usable = every tile is a run of
  // tokens or a grid box; then the descriptors on the device (nullptr for the identity order) and the box
  // shapes (zeros without grid boxes). Not usable: the kernel gathers rows through perm. The top-k planner's
  // device lists (cuda/topk_plan.h) are in the identity order and set usable themselves.
  bool boxes_usable = false;
  rt::Tensor box_desc_buf;
  const int32_t *q_box_desc = nullptr, *kv_box_desc = nullptr;
  int64_t q_box[3] = {0, 0, 0}, kv_box[3] = {0, 0, 0};
  size_t words = 0;  // int32 values in buffer (a consistency check against the layout)
};
UploadedLayout upload_layout(const rt::Context& ctx, const BlockLayout& layout);
// The int32 values upload_layout puts in its buffer for `layout` (the lists, perms, head_perm and the
// per-slot data of the mask kernel), so kernels can check that an upload belongs to a layout.
size_t upload_words(const BlockLayout& layout);

// Softmax attention over the key tiles `layout` visits: full tiles unmasked, partial tiles through
// allowed(layout.rule, q, k) in natural token indices (the masks of upload_layout); keys in unvisited
// tiles are not attended. q, k, v [B, L, H, D] in natural token order (any strides; views whose rows are
// not 16-byte aligned are copied), output [B, L, H, D] contiguous in q's dtype, natural order. A query row that attends no key
// (no visited tile, or every element of its visited partial tiles masked) outputs zeros, as the CPU
// reference defines a fully masked row. CHECKs block_sparse_refusal(p, layout) == "". p.sparse_kernel picks
// the kernel (select_block_sparse_kernel; an explicit one that cannot run CHECK-fails). `uploaded`:
// upload_layout(ctx, layout) made earlier (nullptr: validate and upload now, on every call).
rt::Tensor block_sparse_attention(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& layout,
                                  const UploadedLayout* uploaded = nullptr);

// As block_sparse_attention, for lists built on the device by a dynamic planner (cuda/topk_plan.h), which
// the host never sees: `shape` carries the layout's tiles, seq_len, batch, heads and rule for the refusal
// checks (its CSR vectors are not read), `lists` the device lists, which the planner guarantees to be what
// validate() checks. No host copy and no synchronization, so the call can be captured into a CUDA graph.
rt::Tensor block_sparse_attention_planned(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& shape,
                                          const UploadedLayout& lists);

}  // namespace cuda

}  // namespace sattn::kernels
