// One layout entry (layout batch, layout head, query tile) at a time: its query positions and the keys of
// its visited tiles (full tiles first, then partial ones with their allowed() masks) are resolved once, then
// for every call (batch, head) the entry serves, the rows are gathered, S = scale·Q·Kᵀ and O = P·V run as
// sgemms (OpenBLAS threads them) and the softmax rows run in parallel.
#include "sparse_attention/kernels/sparse/block_sparse_cpu.h"

#include <cblas.h>
#include <cmath>
#include <cstring>
#include <vector>

#include "base/check.h"
#include "sparse_attention/reference/dense_cpu.h"

namespace sattn::kernels {

rt::Tensor block_sparse_attention_cpu(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& l) {
  const char* who = "block_sparse_attention_cpu";
  CHECK(p.q.device().is_cpu() && p.q.dtype() == rt::DType::F32, who, ": CPU f32 tensors, got ", p.q.str());
  CHECK(!p.bias.defined() && p.mask == MaskKind::None, who, ": the layout is the mask (no bias or causal mask)");
  CHECK(p.q.size(1) == l.seq_len && p.k.size(1) == l.seq_len && p.v.size(1) == l.seq_len, who, ": q ", p.q.str(),
        ", k ", p.k.str(), " and v ", p.v.str(), " must have the layout's ", l.seq_len, " tokens");
  const rt::Tensor q = p.q.contiguous(), k = p.k.contiguous(), v = p.v.contiguous();
  const int64_t batch = q.size(0), len = q.size(1), heads = q.size(2), d = q.size(3), dv = v.size(3);
  CHECK((l.batch == 1 || l.batch == batch) && (l.heads == 1 || l.heads == heads), who, ": layout for ", l.batch,
        " x ", l.heads, " (batch x heads), call has ", batch, " x ", heads);
  const std::string bad = validate(l);
  CHECK(bad.empty(), who, ": invalid layout: ", bad);
  const float scale = p.scale != 0.f ? p.scale : 1.f / std::sqrt(float(d));
  rt::Tensor out = rt::Tensor::empty({batch, len, heads, dv});
  if (out.numel() == 0) return out;

  const int64_t nq = l.num_q_tiles();
  std::vector<int64_t> rows, keys;   // natural tokens of the entry's queries and keys
  std::vector<KeyRule> key_rules;    // the partial tiles' keys as the rule sees them (once per entry)
  std::vector<uint8_t> mask;         // [rows, partial keys]: allowed() on the partial tiles' keys
  std::vector<float> qb, kb, vb, s, ob;
  for (int64_t lb = 0; lb < l.batch; ++lb)
    for (int64_t lh = 0; lh < l.heads; ++lh)
      for (int64_t qt = 0; qt < nq; ++qt) {
        const int64_t e = (lb * l.heads + lh) * nq + qt;
        rows.clear(), keys.clear();
        for (int64_t pos = qt * l.q_tile; pos < qt * l.q_tile + l.tile_tokens(qt, l.q_tile); ++pos)
          rows.push_back(l.token(lh, pos));
        auto add_tile = [&](int64_t kt) {
          for (int64_t pos = kt * l.kv_tile; pos < kt * l.kv_tile + l.tile_tokens(kt, l.kv_tile); ++pos)
            keys.push_back(l.token(lh, pos));
        };
        for (int32_t j = l.full_offsets[size_t(e)]; j < l.full_offsets[size_t(e) + 1]; ++j) add_tile(l.full_index[size_t(j)]);
        const int64_t n_full = int64_t(keys.size());
        for (int32_t j = l.partial_offsets[size_t(e)]; j < l.partial_offsets[size_t(e) + 1]; ++j)
          add_tile(l.partial_index[size_t(j)]);
        const int64_t nr = int64_t(rows.size()), nk = int64_t(keys.size()), np = nk - n_full;
        key_rules.clear();
        for (int64_t j = n_full; j < nk; ++j) key_rules.emplace_back(l.rule, keys[size_t(j)]);
        mask.assign(size_t(nr * np), 1);
        if (np > 0)
          ctx.parallel_for(nr, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
              const QueryRule query(l.rule, rows[size_t(r)]);
              for (int64_t j = 0; j < np; ++j) mask[size_t(r * np + j)] = query.allows(key_rules[size_t(j)]);
            }
          }, 8);
        qb.resize(size_t(nr * d)), kb.resize(size_t(nk * d)), vb.resize(size_t(nk * dv));
        s.resize(size_t(nr * nk)), ob.resize(size_t(nr * dv));
        // The call's (batch, head) pairs this entry serves: its own, or all of a broadcast axis.
        for (int64_t b = (l.batch == 1 ? 0 : lb); b < (l.batch == 1 ? batch : lb + 1); ++b)
          for (int64_t h = (l.heads == 1 ? 0 : lh); h < (l.heads == 1 ? heads : lh + 1); ++h) {
            auto row_of = [&](auto& t, int64_t token, int64_t width) {  // const q, k, v; writable out
              return t.template data<float>() + ((b * len + token) * heads + h) * width;
            };
            if (nk == 0) {  // nothing attended: zeros
              for (int64_t r = 0; r < nr; ++r) std::memset(row_of(out, rows[size_t(r)], dv), 0, size_t(dv) * sizeof(float));
              continue;
            }
            for (int64_t r = 0; r < nr; ++r) std::memcpy(&qb[size_t(r * d)], row_of(q, rows[size_t(r)], d), size_t(d) * sizeof(float));
            for (int64_t j = 0; j < nk; ++j) {
              std::memcpy(&kb[size_t(j * d)], row_of(k, keys[size_t(j)], d), size_t(d) * sizeof(float));
              std::memcpy(&vb[size_t(j * dv)], row_of(v, keys[size_t(j)], dv), size_t(dv) * sizeof(float));
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(nr), int(nk), int(d), scale, qb.data(), int(d),
                        kb.data(), int(d), 0.f, s.data(), int(nk));
            ctx.parallel_for(nr, [&](int64_t r0, int64_t r1) {
              for (int64_t r = r0; r < r1; ++r) {
                float* row = &s[size_t(r * nk)];
                const uint8_t* m = &mask[size_t(r * np)];
                for (int64_t j = 0; j < np; ++j)
                  if (!m[j]) row[n_full + j] = -INFINITY;
                reference::softmax_row_cpu(row, nk);  // no allowed key: zeros
              }
            }, 16);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(nr), int(dv), int(nk), 1.f, s.data(), int(nk),
                        vb.data(), int(dv), 0.f, ob.data(), int(dv));
            for (int64_t r = 0; r < nr; ++r)
              std::memcpy(row_of(out, rows[size_t(r)], dv), &ob[size_t(r * dv)], size_t(dv) * sizeof(float));
          }
      }
  return out;
}

}  // namespace sattn::kernels
