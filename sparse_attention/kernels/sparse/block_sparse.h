// The block-sparse flash-attention kernel: executes a BlockLayout (block_layout.h) on the GPU. Planners ask
// for its tile sizes here, and block_sparse_refusal says (in every build) whether it can run a call.
// Plain C++ header; the kernel itself (cuda/block_sparse.cu) exists only in CUDA builds.
#pragma once
#include <cstdint>
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

// Softmax attention over the key tiles `layout` visits: full tiles unmasked, partial tiles through
// allowed(layout.rule, q, k) in natural token indices; keys in unvisited tiles are not attended.
// q, k, v [B, L, H, D] in natural token order (any strides; views whose rows are not 16-byte aligned
// are copied), output [B, L, H, D] contiguous in q's dtype, natural order. A query row that attends no key
// (no visited tile, or every element of its visited partial tiles masked) outputs zeros, as the CPU
// reference defines a fully masked row. CHECKs block_sparse_refusal(p, layout) == "" and validate(layout).
// The layout's int32 arrays are uploaded on every call (KBs to a few MB, from pageable host memory: under
// CUDA graph capture the upload fails with a capture error and the capture falls back to eager runs).
rt::Tensor block_sparse_attention(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& layout);

}  // namespace cuda

}  // namespace sattn::kernels
