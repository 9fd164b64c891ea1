// Dense masked attention on a GPU, written for clarity rather than speed: the trust link between the CPU
// reference (small shapes) and fast kernels (long sequences), and the path for what cuDNN cannot run
// (f32, head dims over 128, such as the VAE's one head of 512). CUDA builds only; plain C++ header.
#pragma once
#include <cstdint>

#include "sparse_attention/attention.h"

namespace sattn::reference {

// Per batch and band of queries: S = scale·Q·Kᵀ (cuBLASLt, f32 accumulation and f32 S, no TF32), a row
// kernel adds the bias, masks, and takes a max-subtracted f32 softmax into P (in q's dtype: bf16/f16 P
// feeds the second GEMM as in flash attention), then O = P·V (f32 accumulation). Bands hold at most
// `score_budget_bytes` of f32 scores for all heads (tests pass a small budget to cross band edges).
// A fully masked row yields zeros, as on the CPU.
rt::Tensor dense_attention_cuda(const rt::Context& ctx, const AttentionParams& p,
                                int64_t score_budget_bytes = int64_t(1) << 30);

}  // namespace sattn::reference
