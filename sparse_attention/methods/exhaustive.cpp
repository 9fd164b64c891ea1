#include "sparse_attention/methods/plan.h"

#include "base/check.h"

namespace sattn {

void append_entry(BlockLayout& l, const std::vector<int32_t>& full, const std::vector<int32_t>& partial) {
  if (l.full_offsets.empty()) l.full_offsets.push_back(0);
  if (l.partial_offsets.empty()) l.partial_offsets.push_back(0);
  l.full_index.insert(l.full_index.end(), full.begin(), full.end());
  l.partial_index.insert(l.partial_index.end(), partial.begin(), partial.end());
  l.full_offsets.push_back(int32_t(l.full_index.size()));
  l.partial_offsets.push_back(int32_t(l.partial_index.size()));
}

BlockLayout plan_exhaustive(const MaskRule& rule, int64_t q_tile, int64_t kv_tile, std::vector<int32_t> perm) {
  BlockLayout l;
  l.q_tile = q_tile;
  l.kv_tile = kv_tile;
  l.seq_len = rule.tokens.seq_len();
  l.perm = std::move(perm);
  l.rule = rule;
  CHECK(q_tile > 0 && kv_tile > 0, "plan_exhaustive: tile sizes ", q_tile, ", ", kv_tile, " must be positive");
  CHECK(l.perm.empty() || int64_t(l.perm.size()) == l.seq_len, "plan_exhaustive: perm has ", l.perm.size(),
        " entries for ", l.seq_len, " tokens");
  auto token = [&](int64_t p) -> int64_t { return l.perm.empty() ? p : l.perm[size_t(p)]; };
  l.full_offsets = {0};
  l.partial_offsets = {0};
  std::vector<int32_t> full, partial;
  for (int64_t qt = 0; qt < l.num_q_tiles(); ++qt) {
    full.clear();
    partial.clear();
    const int64_t q0 = qt * q_tile, q1 = q0 + l.tile_tokens(qt, q_tile);
    for (int64_t kt = 0; kt < l.num_kv_tiles(); ++kt) {
      const int64_t k0 = kt * kv_tile, k1 = k0 + l.tile_tokens(kt, kv_tile);
      int64_t n = 0;
      for (int64_t q = q0; q < q1; ++q)
        for (int64_t k = k0; k < k1; ++k) n += allowed(rule, token(q), token(k)) ? 1 : 0;
      if (n == (q1 - q0) * (k1 - k0))
        full.push_back(int32_t(kt));
      else if (n > 0)
        partial.push_back(int32_t(kt));
    }
    append_entry(l, full, partial);
  }
  return l;
}

}  // namespace sattn
