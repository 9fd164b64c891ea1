// The one block-sparse representation that every method plans and every sparse kernel executes
// (design.md §3.3): for each (batch, head, query tile), the key tiles to visit, split into full tiles
// (every element allowed) and partial tiles (the kernel evaluates the element mask there).
//
// Tiles are cut from the sequence in *layout order*: position p of the permuted sequence holds natural
// token perm[p] (perm empty = identity). Re-layouts (GRAT groups, NATTEN tiles, PARO axis orders) only
// change perm, so callers never see them: kernels gather q/k/v through perm (or receive them permuted)
// and scatter the output back. Heads may run in different orders (PARO picks an axis order per head):
// perm then holds several permutations ("perm sets") back to back and head_perm names each head's set.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sparse_attention/mask_rule.h"

namespace sattn {

struct BlockLayout {
  int64_t q_tile = 0, kv_tile = 0;          // tokens per tile (the last tile of a sequence may be shorter)
  int64_t seq_len = 0;                      // Lq == Lk (self-attention)
  int64_t batch = 1, heads = 1;             // 1 = the same plan for every batch entry / head (broadcast)
  // Layout position -> natural token index: empty = identity for every head; else n · seq_len entries,
  // perm set s = perm[s · seq_len, (s + 1) · seq_len). Without head_perm there must be one set (n = 1).
  std::vector<int32_t> perm;
  // Empty: every head uses perm set 0. Else one perm set index per layout head (heads entries; with
  // heads == 1 the one entry serves every head of the call, as the lists do).
  std::vector<int32_t> head_perm;
  // CSR over entries e = (b·heads + h)·num_q_tiles() + qt; indices sorted ascending, unique.
  std::vector<int32_t> full_offsets, full_index;
  std::vector<int32_t> partial_offsets, partial_index;
  // The element mask on partial tiles (in natural token indices, through perm).
  MaskRule rule;

  int64_t num_q_tiles() const { return q_tile == 0 ? 0 : (seq_len + q_tile - 1) / q_tile; }
  int64_t num_kv_tiles() const { return kv_tile == 0 ? 0 : (seq_len + kv_tile - 1) / kv_tile; }
  int64_t entries() const { return batch * heads * num_q_tiles(); }
  int64_t perm_sets() const { return perm.empty() || seq_len == 0 ? 0 : int64_t(perm.size()) / seq_len; }
  // The layout order of call head h (nullptr = identity): seq_len entries, position -> natural token.
  const int32_t* perm_of(int64_t h) const {
    if (perm.empty()) return nullptr;
    const int64_t set = head_perm.empty() ? 0 : head_perm[size_t(heads == 1 ? 0 : h)];
    return perm.data() + set * seq_len;
  }
  // Natural token of layout position pos for call head h.
  int64_t token(int64_t h, int64_t pos) const {
    const int32_t* p = perm_of(h);
    return p == nullptr ? pos : p[pos];
  }
  int64_t entry(int64_t b, int64_t h, int64_t qt) const {
    return ((batch == 1 ? 0 : b) * heads + (heads == 1 ? 0 : h)) * num_q_tiles() + qt;
  }
  // Tokens in tile `t` of a sequence cut into tiles of `tile` tokens (the last one may be shorter).
  int64_t tile_tokens(int64_t t, int64_t tile) const {
    const int64_t rest = seq_len - t * tile;
    return rest < tile ? rest : tile;
  }
  // Share of the query-key elements inside visited (query tile, key tile) pairs, over all entries: what a
  // kernel computes. flop_density() is the share the rule allows (every element of full tiles plus the
  // allowed() elements of partial tiles): what it must compute. tile_density() >= flop_density(); their
  // ratio is the masking overhead. Both are 0 for an empty sequence.
  double tile_density() const;
  double flop_density() const;
};

// Empty string when the layout is well formed (sizes, offsets monotone, indices sorted, in range, unique,
// full ∩ partial = ∅, every perm set a permutation, head_perm empty or one set index per head in range);
// otherwise what is wrong.
std::string validate(const BlockLayout& layout);

}  // namespace sattn
