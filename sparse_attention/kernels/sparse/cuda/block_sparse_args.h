// What the block-sparse attention kernels (block_sparse.cu on mma.sync, block_sparse_sm90.cu on wgmma)
// receive. Both launchers take this one struct, filled by one function (block_sparse.cu's run), so the two
// kernels cannot read a layout or a view differently.
#pragma once
#include <cstdint>

namespace sattn::kernels::cuda {

struct BlockSparseArgs {
  const void* q;
  const void* k;
  const void* v;
  void* out;                                      // [B, L, H, D] contiguous
  int64_t q_stride[3], k_stride[3], v_stride[3];  // batch, token, head, in elements; D is contiguous
  int seq_len, heads, num_q_tiles, layout_batch, layout_heads;
  const int32_t* perm;       // layout position -> natural token (all perm sets); nullptr = identity
  const int32_t* head_perm;  // perm set per layout head; nullptr = one set
  const int32_t* full_offsets;
  const int32_t* full_index;
  const int32_t* partial_offsets;
  const int32_t* partial_index;
  const uint64_t* partial_masks;  // per partial slot, kBlockSparseQTile words: bit c of word r = allowed(row r, key c)
  float scale_log2;               // softmax scale · log2(e)
  // CTA i (blockIdx.x + q_tiles · (blockIdx.y + heads · blockIdx.z)) runs entry entry_order[i] of the same
  // numbering; nullptr = entry i. See entry_order.h.
  const int32_t* entry_order;
  // sm90ws only (the other kernels walk the partial tiles): entries whose partial tiles it walks as packed
  // keys, packed_entry[2e] = the entry's first key in packed_keys, [2e + 1] their count, -1 = the tiles
  // (packed_keys.h). nullptr: no entry packs.
  const int32_t* packed_entry;
  const int32_t* packed_keys;  // natural token indices
  // sm90ws only: tiles copied as TMA boxes (tile_boxes.h; UploadedLayout's boxes). tma_boxes = false: every
  // tile is gathered through perm. Descriptors nullptr: the identity order (tile i is the run from token
  // i · tile). The grid's extents and first token turn a grid box's first token into its coordinates; the
  // box shapes (t, h, w) are the host's, for the tensor maps.
  bool tma_boxes;
  const int32_t* q_box_desc;
  const int32_t* kv_box_desc;
  int grid_t, grid_h, grid_w, grid_begin;
  int q_box[3], kv_box[3];
};

}  // namespace sattn::kernels::cuda
