#include "sparse_attention/methods/topk.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/check.h"
#include "sparse_attention/methods/plan.h"

namespace sattn {

int64_t sla_tile_count(double share, int64_t n) {
  const double c = std::ceil(share * double(n) - 1e-9);
  return std::clamp<int64_t>(int64_t(c), 0, n);
}

int64_t sla_critical_count(const SlaSpec& s, int64_t n) {
  return n == 0 ? 0 : std::max<int64_t>(1, sla_tile_count(s.critical, n));
}

int64_t sla_marginal_count(const SlaSpec& s, int64_t n) {
  return std::min(sla_tile_count(s.marginal, n), n - sla_critical_count(s, n));
}

namespace {

// Mean over each tile of `tile` tokens of x [B, L, H, D] (contiguous) -> [B, H, n, D].
std::vector<float> pool(const rt::Tensor& x, int64_t tile) {
  const int64_t b_n = x.size(0), len = x.size(1), heads = x.size(2), d = x.size(3);
  const int64_t n = (len + tile - 1) / tile;
  std::vector<float> out(size_t(b_n * heads * n * d), 0.f);
  const float* src = x.data<float>();
  for (int64_t b = 0; b < b_n; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t t = 0; t < n; ++t) {
        float* o = out.data() + ((b * heads + h) * n + t) * d;
        const int64_t end = std::min(len, (t + 1) * tile);
        for (int64_t i = t * tile; i < end; ++i) {
          const float* row = src + ((b * len + i) * heads + h) * d;
          for (int64_t c = 0; c < d; ++c) o[c] += row[c];
        }
        const float count = float(end - t * tile);
        for (int64_t c = 0; c < d; ++c) o[c] = o[c] / count;  // a division, as the GPU planner does
      }
  return out;
}

}  // namespace

std::vector<float> sla_tile_scores(const rt::Context& ctx, const rt::Tensor& q, const rt::Tensor& k, float scale,
                                   int64_t q_tile, int64_t kv_tile) {
  CHECK(q.device().is_cpu() && k.device().is_cpu() && q.dtype() == rt::DType::F32 && k.dtype() == rt::DType::F32,
        "sla_tile_scores: CPU f32 tensors, got q ", q.str(), " k ", k.str());
  CHECK(q.dim() == 4 && k.dim() == 4 && q.size(0) == k.size(0) && q.size(2) == k.size(2) && q.size(3) == k.size(3),
        "sla_tile_scores: q ", q.str(), " and k ", k.str(), " must be [B, L, H, D] with equal B, H, D");
  CHECK(q_tile > 0 && kv_tile > 0, "sla_tile_scores: tiles ", q_tile, "x", kv_tile);
  const int64_t b_n = q.size(0), heads = q.size(2), d = q.size(3);
  const int64_t nq = (q.size(1) + q_tile - 1) / q_tile, nk = (k.size(1) + kv_tile - 1) / kv_tile;
  const std::vector<float> pq = pool(q.contiguous(), q_tile), pk = pool(k.contiguous(), kv_tile);
  std::vector<float> s(size_t(b_n * heads * nq * nk));
  ctx.parallel_for(b_n * heads * nq, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t bh = r / nq;
      const float* a = pq.data() + r * d;
      for (int64_t j = 0; j < nk; ++j) {
        const float* kb = pk.data() + (bh * nk + j) * d;
        float dot = 0.f;
        for (int64_t c = 0; c < d; ++c) dot += a[c] * kb[c];
        s[size_t(r * nk + j)] = scale * dot;
      }
    }
  }, 16);
  return s;
}

SlaTiles sla_select(const std::vector<float>& scores, const SlaSpec& spec, const MaskRule& rule, int64_t batch,
                    int64_t heads, int64_t q_tile, int64_t kv_tile) {
  SlaTiles t;
  BlockLayout& l = t.layout;
  l.q_tile = q_tile, l.kv_tile = kv_tile, l.seq_len = rule.tokens.seq_len(), l.batch = batch, l.heads = heads;
  l.rule = rule;
  const int64_t nk = l.num_kv_tiles(), entries = l.entries();
  CHECK(int64_t(scores.size()) == entries * nk, "sla_select: ", scores.size(), " scores for ", entries, " rows of ", nk);
  const int64_t n_crit = sla_critical_count(spec, nk), n_marg = sla_marginal_count(spec, nk);
  l.full_offsets = {0};
  l.partial_offsets = {0};
  t.marginal_offsets = {0};
  std::vector<int32_t> order(static_cast<size_t>(nk)), critical, marginal;
  for (int64_t e = 0; e < entries; ++e) {
    const float* row = scores.data() + e * nk;
    std::iota(order.begin(), order.end(), 0);
    // Highest score first; equal scores (and -0 == +0) by lower index.
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
    critical.assign(order.begin(), order.begin() + n_crit);
    marginal.assign(order.begin() + n_crit, order.begin() + n_crit + n_marg);
    std::sort(critical.begin(), critical.end());
    std::sort(marginal.begin(), marginal.end());
    append_entry(l, critical, {});
    t.marginal_index.insert(t.marginal_index.end(), marginal.begin(), marginal.end());
    t.marginal_offsets.push_back(int32_t(t.marginal_index.size()));
  }
  return t;
}

SlaTiles plan_sla(const rt::Context& ctx, const rt::Tensor& q, const rt::Tensor& k, float scale, const SlaSpec& spec,
                  const MaskRule& rule, int64_t q_tile, int64_t kv_tile) {
  const int64_t len = rule.tokens.seq_len();
  CHECK(rule.method == MaskMethod::Dense && rule.tokens.valid_text() == rule.tokens.text_len,
        "plan_sla: the rule must be dense without padded text (critical tiles carry no element mask)");
  CHECK(q.dim() == 4 && q.size(1) == len && k.dim() == 4 && k.size(1) == len, "plan_sla: q ", q.str(), " and k ", k.str(),
        " must hold the rule's ", len, " tokens");
  return sla_select(sla_tile_scores(ctx, q, k, scale, q_tile, kv_tile), spec, rule, q.size(0), q.size(2), q_tile, kv_tile);
}

}  // namespace sattn
