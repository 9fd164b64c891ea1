// CPU references of the structured methods: the definition (every (query, key) element through allowed())
// and the execution of a BlockLayout (only the tiles it lists). Plain loops, f32 scores, double softmax
// sums; small problems only (tests, parity fixtures, CPU runs of tiny models).
#pragma once
#include "sparse_attention/attention.h"
#include "sparse_attention/block_layout.h"

namespace sattn::reference {

// softmax over the keys allowed(rule, q, k) of scale·q·kᵀ, times v; a query with no allowed key outputs
// zeros. p: self-attention (Lq == Lk == rule.tokens.seq_len()), CPU f32, no bias or causal mask.
rt::Tensor masked_attention_cpu(const rt::Context& ctx, const AttentionParams& p, const MaskRule& rule);

// The same softmax over the keys of the tiles `layout` lists for each query's (batch, head, query tile):
// every key of a full tile, the allowed(layout.rule, ...) keys of a partial tile (natural indices through
// layout.perm). Keys in unlisted tiles are not attended; a query that attends no key outputs zeros.
rt::Tensor block_layout_attention_cpu(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& layout);

}  // namespace sattn::reference
