// Two passes: per (batch, head) the operands are smoothed and quantized in layout order (blocks of layout
// positions, as the kernel's pre-pass does); then per query row the listed key tiles run an online softmax
// tile by tile, exactly as the kernel's inner loop (running max per tile, P quantized against it).
// Quantized values are held as floats: integer-valued (or e4m3 values) and small enough that every dot
// product and every tile's P·V sum is exact in f32 (127·127·D < 2^24 for D <= 1024; 255·127·64 < 2^24).
#include "sparse_attention/reference/quant_cpu.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "base/check.h"
#include "sparse_attention/reference/sparse_cpu.h"

namespace sattn::reference {

namespace {

constexpr float kLog2e = 1.44269504088896341f;

// One (batch, head) in layout order: row `pos` of q/k/v is natural token perm[pos].
struct Operands {
  std::vector<float> q, k, v;              // [L, D], [L, D], [L, Dv]: quantized values (or raw for None)
  std::vector<float> q_scale, k_scale;     // per kQuantQBlock / kQuantKBlock positions
  std::vector<float> v_scale;              // per channel
};

float symmetric_scale(float max_abs, float qmax) { return max_abs > 0.f ? max_abs / qmax : 1.f; }

float quantize_int(float x, float scale, float qmax) {
  return std::clamp(std::nearbyint(x / scale), -qmax, qmax);
}

// Quantizes rows [0, len) of x ([len, d], layout order) in blocks of `block` rows with one scale each.
void quantize_rows(std::vector<float>& x, int64_t len, int64_t d, int64_t block, float qmax, std::vector<float>& scales) {
  scales.assign(size_t((len + block - 1) / block), 1.f);
  for (int64_t b0 = 0, i = 0; b0 < len; b0 += block, ++i) {
    const int64_t b1 = std::min(len, b0 + block);
    float mx = 0.f;
    for (int64_t r = b0; r < b1; ++r)
      for (int64_t c = 0; c < d; ++c) mx = std::max(mx, std::fabs(x[size_t(r * d + c)]));
    const float s = symmetric_scale(mx, qmax);
    scales[size_t(i)] = s;
    for (int64_t r = b0; r < b1; ++r)
      for (int64_t c = 0; c < d; ++c) x[size_t(r * d + c)] = quantize_int(x[size_t(r * d + c)], s, qmax);
  }
}

struct Problem {
  rt::Tensor q, k, v, out;
  int64_t b, l, h, d, dv;
  float scale;
};

Operands prepare_head(const Problem& pr, const BlockLayout& layout, int64_t b, int64_t h, AttnQuant quant,
                      const QuantReferenceOptions& opt) {
  auto token = [&](int64_t pos) { return layout.token(h, pos); };
  auto row = [&](const rt::Tensor& t, int64_t tok, int64_t width) {
    return t.data<float>() + ((b * pr.l + tok) * pr.h + h) * width;
  };
  const int64_t L = pr.l, D = pr.d, DV = pr.dv;
  Operands o;
  o.q.resize(size_t(L * D)), o.k.resize(size_t(L * D)), o.v.resize(size_t(L * DV));
  std::vector<double> mean(size_t(D), 0.0);
  if (opt.smooth_k) {
    for (int64_t t = 0; t < L; ++t)
      for (int64_t c = 0; c < D; ++c) mean[size_t(c)] += row(pr.k, t, D)[c];
    for (double& m : mean) m /= double(L);
  }
  for (int64_t pos = 0; pos < L; ++pos) {
    const int64_t t = token(pos);
    for (int64_t c = 0; c < D; ++c) {
      o.q[size_t(pos * D + c)] = row(pr.q, t, D)[c];
      o.k[size_t(pos * D + c)] = row(pr.k, t, D)[c] - float(mean[size_t(c)]);
    }
    for (int64_t c = 0; c < DV; ++c) o.v[size_t(pos * DV + c)] = row(pr.v, t, DV)[c];
  }
  o.v_scale.assign(size_t(DV), 1.f);
  if (quant == AttnQuant::None) {
    o.q_scale.assign(size_t((L + kQuantQBlock - 1) / kQuantQBlock), 1.f);
    o.k_scale.assign(size_t((L + kQuantKBlock - 1) / kQuantKBlock), 1.f);
    return o;
  }
  const float qk_max = quant_qk_max(quant), v_max = quant_v_max(quant);
  quantize_rows(o.q, L, D, kQuantQBlock, qk_max, o.q_scale);
  quantize_rows(o.k, L, D, kQuantKBlock, qk_max, o.k_scale);
  for (int64_t c = 0; c < DV; ++c) {
    float mx = 0.f;
    for (int64_t pos = 0; pos < L; ++pos) mx = std::max(mx, std::fabs(o.v[size_t(pos * DV + c)]));
    const float s = symmetric_scale(mx, v_max);
    o.v_scale[size_t(c)] = s;
    for (int64_t pos = 0; pos < L; ++pos) {
      float& x = o.v[size_t(pos * DV + c)];
      x = quant_pv_fp8(quant) ? round_e4m3(x / s) : quantize_int(x, s, v_max);
    }
  }
  return o;
}

}  // namespace

float round_e4m3(float x) {
  if (std::isnan(x)) return x;
  const float a = std::min(std::fabs(x), 448.f);
  // Normal numbers [2^-6, 448] have 3 mantissa bits: a step of 2^(e-3); below 2^-6 subnormals step 2^-9.
  // nearbyint rounds ties to even, which is the even mantissa (the quotient's parity is the last bit).
  const int e = a >= 0x1p-6f ? std::ilogb(a) : -6;
  const float step = std::ldexp(1.f, e - 3);
  const float r = std::min(std::nearbyint(a / step) * step, 448.f);
  return std::copysign(r, x);
}

float e4m3_from_log2(float y) {
  if (!(y > -16.f)) return 0.f;  // code 0 already from y = -6.89; also -inf and NaN
  const int code = int(std::clamp(std::nearbyint(8.f * y + (56.f + kQuantCodeOffset)), 0.f, 126.f));
  const int e = code >> 3, k = code & 7;
  return e == 0 ? std::ldexp(float(k), -9) : std::ldexp(1.f + float(k) / 8.f, e - 7);
}

rt::Tensor quant_attention_cpu(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& layout,
                               AttnQuant quant, const QuantReferenceOptions& opt) {
  CHECK(p.q.device().is_cpu() && p.q.dtype() == rt::DType::F32, "quant_attention_cpu: CPU f32 tensors, got ", p.q.str());
  CHECK(!p.bias.defined() && p.mask == MaskKind::None, "quant_attention_cpu: the layout is the mask (no bias or causal mask)");
  CHECK(p.q.size(1) == layout.seq_len && p.k.size(1) == layout.seq_len && p.v.size(1) == layout.seq_len,
        "quant_attention_cpu: q ", p.q.str(), " k ", p.k.str(), " v ", p.v.str(), " must have the layout's ", layout.seq_len,
        " tokens");
  const std::string bad = validate(layout);
  CHECK(bad.empty(), "quant_attention_cpu: invalid layout: ", bad);
  CHECK(opt.tiles_per_step >= 1, "quant_attention_cpu: tiles_per_step ", opt.tiles_per_step, " must be at least 1");
  CHECK(opt.max_headroom_log2 >= 0 && opt.max_headroom_log2 <= 8, "quant_attention_cpu: max_headroom_log2 ",
        opt.max_headroom_log2, ", expected 0 to 8");
  Problem pr;
  pr.q = p.q.contiguous(), pr.k = p.k.contiguous(), pr.v = p.v.contiguous();
  pr.b = pr.q.size(0), pr.l = pr.q.size(1), pr.h = pr.q.size(2), pr.d = pr.q.size(3), pr.dv = pr.v.size(3);
  CHECK((layout.batch == 1 || layout.batch == pr.b) && (layout.heads == 1 || layout.heads == pr.h),
        "quant_attention_cpu: layout for ", layout.batch, " x ", layout.heads, " (batch x heads), call has ", pr.b, " x ", pr.h);
  pr.scale = p.scale != 0.f ? p.scale : 1.f / std::sqrt(float(pr.d));
  pr.out = rt::Tensor::empty({pr.b, pr.l, pr.h, pr.dv});

  std::vector<Operands> heads(size_t(pr.b * pr.h));
  ctx.parallel_for(pr.b * pr.h, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) heads[size_t(i)] = prepare_head(pr, layout, i / pr.h, i % pr.h, quant, opt);
  }, 1);

  const float p_scale = quant == AttnQuant::None ? 1.f : quant_p_scale(quant);
  const int64_t L = pr.l, D = pr.d, DV = pr.dv, nq = layout.num_q_tiles(), kv = layout.kv_tile;
  const size_t group = size_t(opt.tiles_per_step);
  // The lazy max's headroom in the natural-log units of s, and P's scale below it.
  const float headroom = float(opt.max_headroom_log2) * 0.693147180559945f;
  const float p_step_scale = std::ldexp(p_scale, -opt.max_headroom_log2);
  const bool p_codes = opt.quantize_p && opt.p_codes && quant_pv_fp8(quant);
  const float log2_p_step_scale = std::log2(p_step_scale);
  ctx.parallel_for(pr.b * pr.h * nq, [&](int64_t i0, int64_t i1) {
    std::vector<float> s(static_cast<size_t>(kv * group)), acc(static_cast<size_t>(DV)), tile_acc(static_cast<size_t>(DV));
    std::vector<int32_t> tiles;
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / (pr.h * nq), h = (i / nq) % pr.h, qt = i % nq, e = layout.entry(b, h, qt);
      auto token = [&](int64_t pos) { return layout.token(h, pos); };
      const Operands& o = heads[size_t(b * pr.h + h)];
      tiles.assign(layout.full_index.begin() + layout.full_offsets[size_t(e)],
                   layout.full_index.begin() + layout.full_offsets[size_t(e) + 1]);
      const size_t num_full = tiles.size();
      tiles.insert(tiles.end(), layout.partial_index.begin() + layout.partial_offsets[size_t(e)],
                   layout.partial_index.begin() + layout.partial_offsets[size_t(e) + 1]);
      for (int64_t qp = qt * layout.q_tile; qp < qt * layout.q_tile + layout.tile_tokens(qt, layout.q_tile); ++qp) {
        const float* qrow = o.q.data() + qp * D;
        const float q_scale = o.q_scale[size_t(qp / kQuantQBlock)];
        float m = -INFINITY, l = 0.f;
        std::fill(acc.begin(), acc.end(), 0.f);
        // One softmax step per `group` consecutive tiles: the max is updated once from all of them, then
        // their P is quantized against it.
        for (size_t g0 = 0; g0 < tiles.size(); g0 += group) {
          const size_t g1 = std::min(tiles.size(), g0 + group);
          float mt = -INFINITY;
          for (size_t ti = g0; ti < g1; ++ti) {
            const int64_t kt = tiles[ti], k0 = kt * kv, n = layout.tile_tokens(kt, kv);
            const float dequant = q_scale * o.k_scale[size_t(k0 / kQuantKBlock)] * pr.scale;
            float* st = s.data() + (ti - g0) * size_t(kv);
            for (int64_t j = 0; j < n; ++j) {
              if (ti >= num_full && !allowed(layout.rule, token(qp), token(k0 + j))) {
                st[j] = -INFINITY;
                continue;
              }
              const float* krow = o.k.data() + (k0 + j) * D;
              float dot = 0.f;
              for (int64_t c = 0; c < D; ++c) dot += qrow[c] * krow[c];
              st[j] = dot * dequant;
              mt = std::max(mt, st[j]);
            }
          }
          if (mt == -INFINITY) continue;  // nothing allowed in these tiles: no change
          float m_new = m == -INFINITY || mt > m + headroom ? std::max(m, mt) : m;
          // With P's codes a finite max moves by whole code steps (1/8 in log2 units) to at least the step's
          // max, as the kernel does, so that the codes made against the old max move exactly.
          if (p_codes && m != -INFINITY && m_new != m) m_new = m + std::ceil(8.f * (mt - m) * kLog2e) / (8.f * kLog2e);
          const float alpha = std::exp(m - m_new);  // 0 while nothing was attended (m = -inf)
          m = m_new;
          l *= alpha;
          for (float& x : acc) x *= alpha;
          for (size_t ti = g0; ti < g1; ++ti) {
            const int64_t kt = tiles[ti], k0 = kt * kv, n = layout.tile_tokens(kt, kv);
            const float* st = s.data() + (ti - g0) * size_t(kv);
            std::fill(tile_acc.begin(), tile_acc.end(), 0.f);
            for (int64_t j = 0; j < n; ++j) {
              const float pj = std::exp(st[j] - m);
              float pq = pj * p_step_scale;
              if (p_codes)
                pq = e4m3_from_log2((st[j] - m) * kLog2e + log2_p_step_scale);
              else if (opt.quantize_p && quant != AttnQuant::None)
                pq = quant_pv_fp8(quant) ? round_e4m3(pq) : std::nearbyint(pq);
              l += opt.sum_quantized_p ? pq / p_step_scale : pj;
              if (pq == 0.f) continue;
              const float* vrow = o.v.data() + (k0 + j) * DV;
              for (int64_t c = 0; c < DV; ++c) tile_acc[size_t(c)] += pq * vrow[c];
            }
            for (int64_t c = 0; c < DV; ++c) acc[size_t(c)] += tile_acc[size_t(c)];
          }
        }
        float* out = pr.out.data<float>() + ((b * L + token(qp)) * pr.h + h) * DV;
        for (int64_t c = 0; c < DV; ++c)
          out[c] = l > 0.f ? acc[size_t(c)] * (o.v_scale[size_t(c)] / p_step_scale) / l : 0.f;
      }
    }
  }, 1);
  return pr.out;
}

double quant_error(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& layout, AttnQuant quant,
                   const QuantReferenceOptions& options) {
  const std::vector<float> got = quant_attention_cpu(ctx, p, layout, quant, options).to_vector();
  const std::vector<float> want = block_layout_attention_cpu(ctx, p, layout).to_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    den += double(want[i]) * want[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace sattn::reference
