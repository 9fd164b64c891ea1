#include "sparse_attention/block_layout.h"

#include <cstdint>
#include <sstream>

namespace sattn {

namespace {

template <typename... Args>
std::string say(Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

// One CSR list pair: sizes, monotone offsets, sorted unique in-range indices.
std::string check_csr(const BlockLayout& l, const std::vector<int32_t>& offsets, const std::vector<int32_t>& index,
                      const char* name) {
  const int64_t entries = l.entries(), kv_tiles = l.num_kv_tiles();
  if (int64_t(offsets.size()) != entries + 1)
    return say(name, "_offsets has ", offsets.size(), " values, expected entries + 1 = ", entries + 1);
  if (offsets[0] != 0) return say(name, "_offsets[0] = ", offsets[0], ", expected 0");
  if (int64_t(offsets.back()) != int64_t(index.size()))
    return say(name, "_offsets ends at ", offsets.back(), " but ", name, "_index has ", index.size(), " values");
  for (int64_t e = 0; e < entries; ++e) {
    if (offsets[e + 1] < offsets[e]) return say(name, "_offsets decreases at entry ", e);
    for (int32_t i = offsets[e]; i < offsets[e + 1]; ++i) {
      if (index[i] < 0 || index[i] >= kv_tiles)
        return say(name, "_index of entry ", e, " holds ", index[i], ", outside [0, ", kv_tiles, ")");
      if (i > offsets[e] && index[i] <= index[i - 1])
        return say(name, "_index of entry ", e, " is not strictly ascending at ", index[i - 1], ", ", index[i]);
    }
  }
  return {};
}

}  // namespace

std::string validate(const BlockLayout& l) {
  if (l.q_tile <= 0 || l.kv_tile <= 0) return say("tile sizes must be positive: q_tile ", l.q_tile, ", kv_tile ", l.kv_tile);
  if (l.seq_len < 0 || l.seq_len > INT32_MAX) return say("seq_len ", l.seq_len, " out of range");
  if (l.batch < 1 || l.heads < 1) return say("batch ", l.batch, " and heads ", l.heads, " must be >= 1");
  if (l.rule.tokens.seq_len() != l.seq_len)
    return say("the rule's token layout has ", l.rule.tokens.seq_len(), " tokens but seq_len is ", l.seq_len);
  if (!l.perm.empty()) {
    if (l.seq_len == 0 || int64_t(l.perm.size()) % l.seq_len != 0)
      return say("perm has ", l.perm.size(), " entries, expected a multiple of seq_len ", l.seq_len);
    const int64_t sets = l.perm_sets();
    if (l.head_perm.empty() && sets != 1)
      return say("perm holds ", sets, " perm sets but head_perm is empty (one set serves every head)");
    for (int64_t s = 0; s < sets; ++s) {
      std::vector<char> seen(size_t(l.seq_len), 0);
      for (int64_t p = 0; p < l.seq_len; ++p) {
        const int32_t t = l.perm[size_t(s * l.seq_len + p)];
        const std::string where = sets == 1 ? "" : say(" (perm set ", s, ")");
        if (t < 0 || t >= l.seq_len) return say("perm[", p, "] = ", t, " is outside [0, ", l.seq_len, ")", where);
        if (seen[size_t(t)]) return say("perm is not a permutation: token ", t, " appears twice", where);
        seen[size_t(t)] = 1;
      }
    }
  }
  if (!l.head_perm.empty()) {
    if (l.perm.empty()) return say("head_perm has ", l.head_perm.size(), " entries but perm is empty");
    if (int64_t(l.head_perm.size()) != l.heads)
      return say("head_perm has ", l.head_perm.size(), " entries, expected one per head (", l.heads, ")");
    for (size_t h = 0; h < l.head_perm.size(); ++h)
      if (l.head_perm[h] < 0 || l.head_perm[h] >= l.perm_sets())
        return say("head_perm[", h, "] = ", l.head_perm[h], " is outside the ", l.perm_sets(), " perm sets");
  }
  if (std::string e = check_csr(l, l.full_offsets, l.full_index, "full"); !e.empty()) return e;
  if (std::string e = check_csr(l, l.partial_offsets, l.partial_index, "partial"); !e.empty()) return e;
  for (int64_t e = 0; e < l.entries(); ++e) {
    // Both lists are sorted: a merge finds a tile listed as full and partial.
    int32_t i = l.full_offsets[e], j = l.partial_offsets[e];
    while (i < l.full_offsets[e + 1] && j < l.partial_offsets[e + 1]) {
      if (l.full_index[i] == l.partial_index[j])
        return say("entry ", e, " lists key tile ", l.full_index[i], " as both full and partial");
      l.full_index[i] < l.partial_index[j] ? ++i : ++j;
    }
  }
  return {};
}

double BlockLayout::tile_density() const {
  if (seq_len == 0 || entries() == 0) return 0;
  double visited = 0;
  for (int64_t e = 0; e < entries(); ++e) {
    const int64_t rows = tile_tokens(e % num_q_tiles(), q_tile);
    for (int32_t i = full_offsets[e]; i < full_offsets[e + 1]; ++i)
      visited += double(rows) * double(tile_tokens(full_index[i], kv_tile));
    for (int32_t i = partial_offsets[e]; i < partial_offsets[e + 1]; ++i)
      visited += double(rows) * double(tile_tokens(partial_index[i], kv_tile));
  }
  return visited / (double(batch * heads) * double(seq_len) * double(seq_len));
}

double BlockLayout::flop_density() const {
  if (seq_len == 0 || entries() == 0) return 0;
  double allowed_elements = 0;
  for (int64_t e = 0; e < entries(); ++e) {
    const int64_t qt = e % num_q_tiles(), rows = tile_tokens(qt, q_tile), h = (e / num_q_tiles()) % heads;
    auto token = [&](int64_t p) { return this->token(h, p); };
    for (int32_t i = full_offsets[e]; i < full_offsets[e + 1]; ++i)
      allowed_elements += double(rows) * double(tile_tokens(full_index[i], kv_tile));
    for (int32_t i = partial_offsets[e]; i < partial_offsets[e + 1]; ++i) {
      const int64_t k0 = int64_t(partial_index[i]) * kv_tile, k1 = k0 + tile_tokens(partial_index[i], kv_tile);
      for (int64_t q = qt * q_tile; q < qt * q_tile + rows; ++q)
        for (int64_t k = k0; k < k1; ++k) allowed_elements += allowed(rule, token(q), token(k)) ? 1 : 0;
    }
  }
  return allowed_elements / (double(batch * heads) * double(seq_len) * double(seq_len));
}

}  // namespace sattn
