// Structured attention calls (a method other than dense, or padded text): the layout is planned once
// per rule (cached in a GPU context's plan cache), then run by the block-sparse kernel on GPUs when it
// accepts the call, else by a masked dense reference (the explicit mask as an additive -inf bias, for
// sequences of at most kMaskedDenseMaxTokens tokens), and on the CPU by the tiled block-sparse executor
// (kernels/sparse/block_sparse_cpu.h; kernel = Reference runs the explicit-mask definition instead).
// Dynamic methods (SLA, methods/topk.h) plan per call from q and k instead: on the CPU with plan_sla and
// the CPU block-sparse executor, on a GPU with the device planner (kernels/sparse/cuda/topk_plan.h) feeding
// the block-sparse kernel (no host round trip, capturable); they need no token layout (none = a plain
// sequence of Lq tokens) and refuse padded text.
#pragma once
#include <memory>
#include <string>

#include "sparse_attention/attention.h"
#include "sparse_attention/block_layout.h"

namespace sattn {

// The GPU masked dense fallback builds an L x L bias on the host.
inline constexpr int64_t kMaskedDenseMaxTokens = 8192;

bool is_structured(const AttentionParams& p);

// p's rule (method over p.tokens; a dynamic method without tokens: a plain sequence of Lq tokens); CHECKs
// that p is a valid structured call (self-attention over tokens.seq_len() tokens, no bias or causal mask,
// rule_error() == "", no padded text for a dynamic method).
MaskRule structured_rule(const AttentionParams& p);

// The layout attention() runs for a structured p, planned at the block-sparse kernel's tiles. A dynamic
// method's tiles depend on q and k, so it gets a stand-in of the same size instead: batch = heads = 1 and
// the first sla_critical_count() key tiles of every query tile (densities as planned, up to the short last
// tile; the lists are not the ones that run).
std::shared_ptr<const BlockLayout> structured_layout(const rt::Context& ctx, const AttentionParams& p);

rt::Tensor structured_attention(const rt::Context& ctx, const AttentionParams& p);
std::string describe_structured(const rt::Context& ctx, const AttentionParams& p);

}  // namespace sattn
