// CPU reference of SLA (sparse-attention.md §4): softmax attention over the critical tiles of a plan
// (methods/topk.h) plus, when the layer carries SLA fine-tuned weights, the learned projection of a linear
// attention branch. Plain loops, f32, small problems only (tests and the spec for kernels).
//
// The linear branch (§4.1 step 4, §4.3): φ(x) = softmax over the head dim of one token's q or k (the
// released code's feature_map='softmax', tied for q and k, applied to unscaled q and k), and per query i
//   O_l[i] = φ(q_i)ᵀ H / (1e-5 + φ(q_i)·Z),   H = Σ_j φ(k_j) v_jᵀ  (D x Dv),   Z = Σ_j φ(k_j)  (D),
// j over the branch's keys. The output is O = O_s + O_l·Wᵀ + b (proj_l, nn.Linear(Dv, Dv) of the released
// code, shared by the heads of one attention layer, zero-initialised before fine-tuning). Which keys j are
// is where the paper and the two released branches differ (§4.3):
//   SlaLinearKeys::Marginal: the plan's marginal tiles of the query's tile (the paper's k_l split; with
//       critical + marginal = 1 it is the SLA-1 branch: every non-critical tile);
//   SlaLinearKeys::All: every key of the sequence (the main branch, which TurboDiffusion's checkpoints use).
#pragma once
#include "sparse_attention/attention.h"
#include "sparse_attention/methods/topk.h"

namespace sattn::reference {

// One attention layer's proj_l: weight [Dv, Dv] (out, in), optional bias [Dv]; CPU f32.
struct SlaProjection {
  rt::Tensor weight, bias;
};

enum class SlaLinearKeys { Marginal, All };

// O_l [B, L, H, Dv] for q, k [B, L, H, D], v [B, L, H, Dv] (CPU f32, any strides), through per key tile sums
// h_t = Σ_{j in t} φ(k_j) v_jᵀ and z_t = Σ_{j in t} φ(k_j) added per query tile. A query with no key in the
// branch (no marginal tile) gets 0.
rt::Tensor sla_linear_attention_cpu(const rt::Context& ctx, const rt::Tensor& q, const rt::Tensor& k, const rt::Tensor& v,
                                    const SlaTiles& tiles, SlaLinearKeys keys);

// SLA's output for p (self-attention, CPU f32, no bias or causal mask): the softmax attention over the
// critical tiles (block_layout_attention_cpu on tiles.layout) plus proj(O_l) when proj != nullptr. Without
// proj, the training-free form: top-k block-sparse softmax attention alone (marginal tiles are skipped).
rt::Tensor sla_attention_cpu(const rt::Context& ctx, const AttentionParams& p, const SlaTiles& tiles,
                             const SlaProjection* proj, SlaLinearKeys keys);

}  // namespace sattn::reference
