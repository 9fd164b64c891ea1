// The block-sparse attention executor on the CPU: runs a BlockLayout (block_layout.h) with the same
// semantics as reference::block_layout_attention_cpu (every key of a full tile, the allowed() keys of a
// partial tile, zeros for a query that attends nothing), but a query tile at a time with two sgemms over
// the gathered keys of its visited tiles, and the partial tiles' masks from one QueryRule per query row and
// one KeyRule per key (mask_rule.h). At 1,024 image tokens GNA 1x13x13 takes 1.0-1.1x dense attention's
// time per call, GNA 1x8x8 0.8x, GRAT-X 1x2x2 (every tile partial) 1.5x; the reference's per-row loop took 2-3x.
// Tested against the reference (tests/sparse_attention/test_sparse_cpu.cpp).
#pragma once
#include "sparse_attention/attention.h"
#include "sparse_attention/block_layout.h"

namespace sattn::kernels {

// p: self-attention over layout.seq_len tokens, CPU f32, no bias or causal mask; layout batch/heads 1 or the
// call's. F32 scores and accumulation (OpenBLAS sgemm), double row sums as the reference.
rt::Tensor block_sparse_attention_cpu(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& layout);

}  // namespace sattn::kernels
