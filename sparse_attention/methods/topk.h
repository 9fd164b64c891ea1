// SLA's block classification (sparse-attention.md §4.1 steps 1-2, §4.3), the CPU spec of the dynamic
// planner. Per (batch, head): q is mean-pooled over each query tile and k over each key tile (a short last
// tile over its own tokens), S = scale · pooled_q · pooled_kᵀ, P = softmax over each row of S. Per query
// tile, the critical key tiles are the ceil(critical · n) of highest P (at least 1; ties: lower index
// first), the marginal ones the next ceil(marginal · n) (at most the rest); the others are negligible.
// Softmax is strictly increasing along a row, so the ranking of P is the ranking of S: the planners rank S
// (as the released code does, §4.3; ranking rounded probabilities would create ties S does not have). The
// released code also subtracts the per-head mean of k first, which shifts each row of S by a constant and
// leaves the ranking unchanged; it is left out. The GPU planner (kernels/sparse/cuda/topk_plan.h) computes
// the same critical lists on the device.
#pragma once
#include <cstdint>
#include <vector>

#include "context.h"
#include "sparse_attention/block_layout.h"
#include "sparse_attention/methods/method_spec.h"
#include "tensor.h"

namespace sattn {

// ceil(share · n) clamped to [0, n], with a 1e-9 slack so that shares written in decimal count as meant
// (0.1 · 70 is 7.000000000000001 in doubles and gives 7, not 8).
int64_t sla_tile_count(double share, int64_t n);
// The critical tiles per query tile out of n key tiles: sla_tile_count(critical, n), at least 1 (n > 0).
int64_t sla_critical_count(const SlaSpec& s, int64_t n);
// The marginal tiles per query tile: sla_tile_count(marginal, n), at most n - critical.
int64_t sla_marginal_count(const SlaSpec& s, int64_t n);

// S as [B, H, nq, nk] (row-major) for q, k: CPU f32 [B, L, H, D] (any strides). Pooled values are the f32
// sum in token order divided by the tile's token count; S = scale · (f32 dot product over D in order).
std::vector<float> sla_tile_scores(const rt::Context& ctx, const rt::Tensor& q, const rt::Tensor& k, float scale,
                                   int64_t q_tile, int64_t kv_tile);

struct SlaTiles {
  // batch and heads = the call's, seq_len = L, rule = the call's dense rule; full lists = the critical tiles,
  // ascending; no partial tiles. validate(layout) holds.
  BlockLayout layout;
  // The marginal tiles, CSR over the layout's entries, ascending.
  std::vector<int32_t> marginal_offsets, marginal_index;
};

// Critical and marginal tiles of each row of `scores` ([entries, nk] in the layout's entry order).
SlaTiles sla_select(const std::vector<float>& scores, const SlaSpec& spec, const MaskRule& rule, int64_t batch,
                    int64_t heads, int64_t q_tile, int64_t kv_tile);

// The SLA plan of a self-attention call: q, k CPU f32 [B, L, H, D]; rule: the dense rule over the call's L
// tokens (rule.tokens.seq_len() == L, rule.method == Dense, no padded text: critical tiles carry no mask).
SlaTiles plan_sla(const rt::Context& ctx, const rt::Tensor& q, const rt::Tensor& k, float scale, const SlaSpec& spec,
                  const MaskRule& rule, int64_t q_tile, int64_t kv_tile);

}  // namespace sattn
