// SLA's critical tiles planned on the GPU (the spec: methods/topk.h): mean-pooled q per query tile and k per
// key tile, S = scale · pooled_q · pooled_kᵀ, and per (batch, head, query tile) the `critical` key tiles of
// highest S (equal S: lower index first) written ascending as the block-sparse kernel's CSR lists, with a
// fixed count per row (full_offsets[e] = e · critical) and no partial tiles. Everything stays on the stream:
// buffers come from the pool (cuda::empty), nothing is copied to the host and nothing synchronizes, so the
// planner and the attention after it can be captured into a CUDA graph.
#pragma once
#include <cstdint>

#include "context.h"
#include "sparse_attention/block_layout.h"
#include "sparse_attention/kernels/sparse/block_sparse.h"
#include "tensor.h"

namespace sattn::kernels::cuda {

// The most key tiles a row can have (the selection keeps a row's scores in shared memory).
inline constexpr int64_t kTopkMaxKvTiles = 8192;

// Plans `shape` (its tiles, seq_len, batch and heads; the CSR vectors are not read) for q, k [B, L, H, D]
// (f32, bf16 or f16 GPU tensors, any strides; L = shape.seq_len, B and H = shape's) and returns the lists
// as an UploadedLayout (perm = nullptr, no partial tiles, every tile a run for sm90ws's TMA copies; `words` =
// the int32 values in its buffer) for block_sparse_attention_planned. CHECKs 1 <= critical <=
// shape.num_kv_tiles() <= kTopkMaxKvTiles.
UploadedLayout plan_topk(const rt::Context& ctx, const rt::Tensor& q, const rt::Tensor& k, float scale,
                         int64_t critical, const BlockLayout& shape);

}  // namespace sattn::kernels::cuda
