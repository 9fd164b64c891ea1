// Dense attention through cuDNN's fused SDPA (cuDNN frontend graph API): bf16/f16 q/k/v views with their
// real strides (no copies unless a view breaks cuDNN's 16-byte alignment), causal mask, additive bias.
// CUDA builds only; plain C++ header.
#pragma once
#include <string>

#include "sparse_attention/attention.h"

namespace sattn::kernels::cuda {

// "" when cuDNN runs p on ctx's GPU, else why not (for select_dense_kernel). Builds the graph for p's
// layout the first time and caches it (and a refusal) in ctx.cuda().plans.
std::string cudnn_sdpa_refusal(const rt::Context& ctx, const AttentionParams& p);

// Runs p; CHECKs that cudnn_sdpa_refusal(ctx, p) is "". Output [B, Lq, H, Dv], contiguous, q's dtype.
rt::Tensor cudnn_sdpa(const rt::Context& ctx, const AttentionParams& p);

}  // namespace sattn::kernels::cuda
