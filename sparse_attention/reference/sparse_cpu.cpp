// One query row at a time: the keys it attends are gathered as a list of natural token indices, then a
// max-subtracted softmax (f32 scores, double sum) and the weighted sum of v rows. Rows run in parallel.
#include "sparse_attention/reference/sparse_cpu.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/check.h"

namespace sattn::reference {

namespace {

struct Operands {
  rt::Tensor q, k, v, out;
  int64_t b, l, h, d, dv;
  float scale;
};

Operands prepare(const AttentionParams& p, int64_t seq_len, const char* who) {
  CHECK(p.q.device().is_cpu() && p.q.dtype() == rt::DType::F32, who, ": CPU f32 tensors, got ", p.q.str());
  CHECK(!p.bias.defined() && p.mask == MaskKind::None, who, ": the rule is the mask (no bias or causal mask)");
  CHECK(p.q.size(1) == seq_len && p.k.size(1) == seq_len, who, ": q ", p.q.str(), " and k ", p.k.str(),
        " must have the rule's ", seq_len, " tokens");
  Operands o;
  o.q = p.q.contiguous();
  o.k = p.k.contiguous();
  o.v = p.v.contiguous();
  o.b = o.q.size(0), o.l = o.q.size(1), o.h = o.q.size(2), o.d = o.q.size(3), o.dv = o.v.size(3);
  o.scale = p.scale != 0.f ? p.scale : 1.f / std::sqrt(float(o.d));
  o.out = rt::Tensor::empty({o.b, o.l, o.h, o.dv});
  return o;
}

// out[b, qi, h] = softmax over `keys` of scale·q·k, times v.
void attend_row(Operands& o, int64_t b, int64_t h, int64_t qi, const std::vector<int64_t>& keys,
                std::vector<float>& s) {
  const float* q = o.q.data<float>() + ((b * o.l + qi) * o.h + h) * o.d;
  float* out = o.out.data<float>() + ((b * o.l + qi) * o.h + h) * o.dv;
  std::fill(out, out + o.dv, 0.f);
  if (keys.empty()) return;
  s.resize(keys.size());
  float mx = -INFINITY;
  for (size_t j = 0; j < keys.size(); ++j) {
    const float* k = o.k.data<float>() + ((b * o.l + keys[j]) * o.h + h) * o.d;
    float dot = 0.f;
    for (int64_t c = 0; c < o.d; ++c) dot += q[c] * k[c];
    s[j] = o.scale * dot;
    mx = std::max(mx, s[j]);
  }
  double sum = 0;
  for (float& x : s) sum += (x = std::exp(x - mx));
  const float inv = float(1.0 / sum);
  for (size_t j = 0; j < keys.size(); ++j) {
    const float* v = o.v.data<float>() + ((b * o.l + keys[j]) * o.h + h) * o.dv;
    const float w = s[j] * inv;
    for (int64_t c = 0; c < o.dv; ++c) out[c] += w * v[c];
  }
}

}  // namespace

rt::Tensor masked_attention_cpu(const rt::Context& ctx, const AttentionParams& p, const MaskRule& rule) {
  Operands o = prepare(p, rule.tokens.seq_len(), "masked_attention_cpu");
  ctx.parallel_for(o.l, [&](int64_t q0, int64_t q1) {
    std::vector<int64_t> keys;
    std::vector<float> s;
    for (int64_t qi = q0; qi < q1; ++qi) {
      keys.clear();
      for (int64_t k = 0; k < o.l; ++k)
        if (allowed(rule, qi, k)) keys.push_back(k);
      for (int64_t b = 0; b < o.b; ++b)
        for (int64_t h = 0; h < o.h; ++h) attend_row(o, b, h, qi, keys, s);
    }
  }, 8);
  return o.out;
}

rt::Tensor block_layout_attention_cpu(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& l) {
  Operands o = prepare(p, l.seq_len, "block_layout_attention_cpu");
  CHECK((l.batch == 1 || l.batch == o.b) && (l.heads == 1 || l.heads == o.h), "block_layout_attention_cpu: layout for ",
        l.batch, " x ", l.heads, " (batch x heads), call has ", o.b, " x ", o.h);
  const std::string bad = validate(l);
  CHECK(bad.empty(), "block_layout_attention_cpu: invalid layout: ", bad);
  const int64_t nq = l.num_q_tiles();
  ctx.parallel_for(o.b * o.h * nq, [&](int64_t i0, int64_t i1) {
    std::vector<int64_t> keys;
    std::vector<float> s;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / (o.h * nq), h = (i / nq) % o.h, qt = i % nq, e = l.entry(b, h, qt);
      auto token = [&](int64_t pos) { return l.token(h, pos); };
      for (int64_t qp = qt * l.q_tile; qp < qt * l.q_tile + l.tile_tokens(qt, l.q_tile); ++qp) {
        const int64_t qi = token(qp);
        keys.clear();
        for (int32_t j = l.full_offsets[size_t(e)]; j < l.full_offsets[size_t(e) + 1]; ++j) {
          const int64_t kt = l.full_index[size_t(j)];
          for (int64_t kp = kt * l.kv_tile; kp < kt * l.kv_tile + l.tile_tokens(kt, l.kv_tile); ++kp) keys.push_back(token(kp));
        }
        for (int32_t j = l.partial_offsets[size_t(e)]; j < l.partial_offsets[size_t(e) + 1]; ++j) {
          const int64_t kt = l.partial_index[size_t(j)];
          for (int64_t kp = kt * l.kv_tile; kp < kt * l.kv_tile + l.tile_tokens(kt, l.kv_tile); ++kp)
            if (allowed(l.rule, qi, token(kp))) keys.push_back(token(kp));
        }
        attend_row(o, b, h, qi, keys, s);
      }
    }
  }, 1);
  return o.out;
}

}  // namespace sattn::reference
