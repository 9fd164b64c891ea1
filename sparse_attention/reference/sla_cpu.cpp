#include "sparse_attention/reference/sla_cpu.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/check.h"
#include "sparse_attention/reference/sparse_cpu.h"

namespace sattn::reference {

namespace {

// φ: softmax over the d values at x (max-subtracted, f32).
void feature_map(const float* x, int64_t d, float* out) {
  float mx = -INFINITY;
  for (int64_t c = 0; c < d; ++c) mx = std::max(mx, x[c]);
  float sum = 0.f;
  for (int64_t c = 0; c < d; ++c) sum += (out[c] = std::exp(x[c] - mx));
  for (int64_t c = 0; c < d; ++c) out[c] /= sum;
}

}  // namespace

rt::Tensor sla_linear_attention_cpu(const rt::Context& ctx, const rt::Tensor& q_in, const rt::Tensor& k_in,
                                    const rt::Tensor& v_in, const SlaTiles& tiles, SlaLinearKeys keys) {
  const BlockLayout& l = tiles.layout;
  for (const rt::Tensor* t : {&q_in, &k_in, &v_in})
    CHECK(t->device().is_cpu() && t->dtype() == rt::DType::F32 && t->dim() == 4, "sla_linear_attention_cpu: CPU f32 [B, L, H, D] tensors, got ",
          t->str());
  const rt::Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  const int64_t b_n = q.size(0), len = q.size(1), heads = q.size(2), d = q.size(3), dv = v.size(3);
  CHECK(k.size(0) == b_n && v.size(0) == b_n && k.size(1) == len && v.size(1) == len && k.size(2) == heads &&
            v.size(2) == heads && k.size(3) == d,
        "sla_linear_attention_cpu: q ", q.str(), " k ", k.str(), " v ", v.str(), " must be self-attention shapes");
  CHECK(l.seq_len == len && (l.batch == 1 || l.batch == b_n) && (l.heads == 1 || l.heads == heads),
        "sla_linear_attention_cpu: plan for ", l.batch, " x ", l.heads, " x ", l.seq_len, " (batch x heads x tokens), call has ",
        b_n, " x ", heads, " x ", len);
  CHECK(int64_t(tiles.marginal_offsets.size()) == l.entries() + 1, "sla_linear_attention_cpu: ",
        tiles.marginal_offsets.size(), " marginal offsets for ", l.entries(), " entries");
  const int64_t nq = l.num_q_tiles(), nk = l.num_kv_tiles();
  rt::Tensor out = rt::Tensor::empty({b_n, len, heads, dv});
  const float *qd = q.data<float>(), *kd = k.data<float>(), *vd = v.data<float>();
  float* od = out.data<float>();
  ctx.parallel_for(b_n * heads, [&](int64_t i0, int64_t i1) {
    std::vector<float> hz(static_cast<size_t>(nk * d * (dv + 1))), big_h(static_cast<size_t>(d * dv)),
        big_z(static_cast<size_t>(d)), phi(static_cast<size_t>(d));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / heads, h = i % heads;
      // Per key tile t: h_t (d x dv, row c = Σ φ(k_j)[c] v_j) then z_t (d), stored one after the other.
      std::fill(hz.begin(), hz.end(), 0.f);
      for (int64_t j = 0; j < len; ++j) {
        float* ht = hz.data() + (j / l.kv_tile) * d * (dv + 1);
        float* zt = ht + d * dv;
        feature_map(kd + ((b * len + j) * heads + h) * d, d, phi.data());
        const float* vj = vd + ((b * len + j) * heads + h) * dv;
        for (int64_t c = 0; c < d; ++c) {
          for (int64_t e = 0; e < dv; ++e) ht[c * dv + e] += phi[size_t(c)] * vj[e];
          zt[c] += phi[size_t(c)];
        }
      }
      for (int64_t qt = 0; qt < nq; ++qt) {
        std::fill(big_h.begin(), big_h.end(), 0.f);
        std::fill(big_z.begin(), big_z.end(), 0.f);
        auto add_tile = [&](int64_t t) {
          const float* ht = hz.data() + t * d * (dv + 1);
          for (int64_t c = 0; c < d * dv; ++c) big_h[size_t(c)] += ht[c];
          for (int64_t c = 0; c < d; ++c) big_z[size_t(c)] += ht[d * dv + c];
        };
        if (keys == SlaLinearKeys::All) {
          for (int64_t t = 0; t < nk; ++t) add_tile(t);
        } else {
          const int64_t e = l.entry(b, h, qt);
          for (int32_t s = tiles.marginal_offsets[size_t(e)]; s < tiles.marginal_offsets[size_t(e) + 1]; ++s)
            add_tile(tiles.marginal_index[size_t(s)]);
        }
        for (int64_t qi = qt * l.q_tile; qi < qt * l.q_tile + l.tile_tokens(qt, l.q_tile); ++qi) {
          feature_map(qd + ((b * len + qi) * heads + h) * d, d, phi.data());
          float den = 1e-5f;
          for (int64_t c = 0; c < d; ++c) den += phi[size_t(c)] * big_z[size_t(c)];
          float* o = od + ((b * len + qi) * heads + h) * dv;
          for (int64_t e = 0; e < dv; ++e) {
            float num = 0.f;
            for (int64_t c = 0; c < d; ++c) num += phi[size_t(c)] * big_h[size_t(c * dv + e)];
            o[e] = num / den;
          }
        }
      }
    }
  }, 1);
  return out;
}

rt::Tensor sla_attention_cpu(const rt::Context& ctx, const AttentionParams& p, const SlaTiles& tiles,
                             const SlaProjection* proj, SlaLinearKeys keys) {
  rt::Tensor out = block_layout_attention_cpu(ctx, p, tiles.layout);
  if (proj == nullptr) return out;
  const int64_t dv = p.v.size(3);
  const rt::Tensor w = proj->weight.contiguous();
  CHECK(w.device().is_cpu() && w.dtype() == rt::DType::F32 && w.shape() == rt::Shape({dv, dv}),
        "sla_attention_cpu: proj weight ", w.str(), " must be CPU f32 [Dv, Dv] with Dv = ", dv);
  rt::Tensor bias;
  if (proj->bias.defined()) {
    bias = proj->bias.contiguous();
    CHECK(bias.device().is_cpu() && bias.dtype() == rt::DType::F32 && bias.shape() == rt::Shape({dv}),
          "sla_attention_cpu: proj bias ", bias.str(), " must be CPU f32 [Dv] with Dv = ", dv);
  }
  const rt::Tensor lin = sla_linear_attention_cpu(ctx, p.q, p.k, p.v, tiles, keys);
  const float *ld = lin.data<float>(), *wd = w.data<float>(), *bd = bias.defined() ? bias.data<float>() : nullptr;
  float* od = out.data<float>();
  const int64_t rows = lin.numel() / dv;
  ctx.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t e = 0; e < dv; ++e) {
        float acc = bd != nullptr ? bd[e] : 0.f;
        for (int64_t c = 0; c < dv; ++c) acc += wd[e * dv + c] * ld[r * dv + c];
        od[r * dv + e] += acc;
      }
  }, 64);
  return out;
}

}  // namespace sattn::reference
