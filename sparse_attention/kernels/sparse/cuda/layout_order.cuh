// A block layout on the device (block_layout.h), as both block-sparse kernels read it: the order of one head
// (a layout with per-head perms holds several perm sets back to back in `perm` and one set index per
// layout head in `head_perm`) and the key tiles of one (batch, head, query tile) entry.
#pragma once
#include <cstdint>

namespace sattn::kernels::cuda {

// Head h's perm (layout position -> natural token), nullptr = identity. head_perm == nullptr: one set for
// every head; layout_heads == 1: the one entry of head_perm serves every head.
__device__ __forceinline__ const int32_t* head_order(const int32_t* perm, const int32_t* head_perm, int layout_heads,
                                                     int seq_len, int h) {
  if (perm == nullptr || head_perm == nullptr) return perm;
  return perm + int64_t(__ldg(head_perm + (layout_heads == 1 ? 0 : h))) * seq_len;
}

__device__ __forceinline__ int64_t natural_token(const int32_t* perm, int pos) {
  return perm != nullptr ? int64_t(__ldg(perm + pos)) : int64_t(pos);
}

// The key tiles of one layout entry: its full tiles, then its partial ones (CSR lists of block_layout.h).
struct EntryTiles {
  const int32_t* full;
  const int32_t* partial;
  int num_full, num_tiles;
  int partial_begin;  // index of the first partial tile in the layout's partial lists (its row masks)
  // The i-th tile to visit, -1 past the end (the kernels prefetch ahead).
  __device__ __forceinline__ int at(int i) const {
    if (i >= num_tiles) return -1;
    return i < num_full ? __ldg(full + i) : __ldg(partial + i - num_full);
  }
};

// Entry (b, h, qt) of the layout in the kernel arguments `a` (broadcast over batch / heads when the layout
// has one of them): its index in the CSR offsets, and its tiles.
template <class Args>
__device__ __forceinline__ int64_t entry_index(const Args& a, int b, int h, int qt) {
  return (int64_t(a.layout_batch == 1 ? 0 : b) * a.layout_heads + (a.layout_heads == 1 ? 0 : h)) * a.num_q_tiles + qt;
}
template <class Args>
__device__ __forceinline__ EntryTiles entry_tiles(const Args& a, int b, int h, int qt) {
  const int64_t e = entry_index(a, b, h, qt);
  const int full_begin = a.full_offsets[e], partial_begin = a.partial_offsets[e];
  const int num_full = a.full_offsets[e + 1] - full_begin;
  return {a.full_index + full_begin, a.partial_index + partial_begin, num_full,
          num_full + a.partial_offsets[e + 1] - partial_begin, partial_begin};
}

// The (query tile, head, batch) entry this CTA runs: grid (query tiles, heads, batch), in a.entry_order's
// order where the caller set one (entry_order.h), else the grid's.
struct EntryCoords {
  int qt, h, b;
};
// Entry number e (query tile fastest, then head, then batch) as coordinates.
template <class Args>
__device__ __forceinline__ EntryCoords entry_coords(const Args& a, int e) {
  return {e % a.num_q_tiles, (e / a.num_q_tiles) % a.heads, e / a.num_q_tiles / a.heads};
}
template <class Args>
__device__ __forceinline__ EntryCoords cta_entry(const Args& a) {
  int entry = int(blockIdx.x) + a.num_q_tiles * (int(blockIdx.y) + a.heads * int(blockIdx.z));
  if (a.entry_order != nullptr) entry = __ldg(a.entry_order + entry);
  return entry_coords(a, entry);
}

// Zeros for the rows of a query tile that visits no key, the defined output of a fully masked row: rows
// q0..q0+rows of the head's output (row stride out_ld elements), written in natural token order.
template <int D, int kThreads, class T>
__device__ __forceinline__ void zero_rows(T* out, int64_t out_ld, const int32_t* perm, int q0, int rows, int seq_len) {
  constexpr int kChunks = D * int(sizeof(T)) / 16;  // 16-byte chunks of a row
  for (int idx = int(threadIdx.x); idx < rows * kChunks; idx += kThreads) {
    const int pos = q0 + idx / kChunks;
    if (pos < seq_len)
      reinterpret_cast<uint4*>(out + natural_token(perm, pos) * out_ld)[idx % kChunks] = make_uint4(0, 0, 0, 0);
  }
}

}  // namespace sattn::kernels::cuda
