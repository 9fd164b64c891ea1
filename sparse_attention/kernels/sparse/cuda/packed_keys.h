// Packed keys (read by the sm90ws kernel only): for a layout entry whose partial tiles each have one mask
// word for every query row of the tile, the allowed keys of those tiles, back to back in layout order.
// The kernel then walks the entry's full tiles, then its packed keys 64 to a slot, instead of the partial
// tiles with their per-row masks: no masked-out key is loaded or multiplied, and only the last slot is
// ragged. GNA with a stride that holds a query tile (Flux 1x40x40 stride 16) gives such entries: every query
// of the tile shares one window, which cuts the key tiles at the window's edge.
#pragma once
#include <cstdint>

#include "context.h"
#include "tensor.h"

namespace sattn::kernels::cuda {

struct PackedKeys {
  // int32 values (rt::DType has no int32): entry[2e] = the entry's first key in `keys`, entry[2e + 1] its key
  // count, both -1 for an entry that keeps its partial tiles (a tile with rows of different masks, or no
  // partial tile at all). keys: natural token indices (the entry's perm applied), in layout order per entry.
  rt::Tensor entry, keys;
};

// On ctx's stream, from the upload's lists and masks (upload_layout): `entries` layout entries, `slots`
// partial tiles, masks[slot · 128 + row] as block_sparse_args.h's partial_masks, perm (nullptr = identity)
// and each slot's perm set (slot_set; nullptr = set 0). No host synchronization.
PackedKeys pack_partial_keys(const rt::Context& ctx, const int32_t* partial_offsets, const int32_t* partial_index,
                             const uint64_t* masks, const int32_t* perm, const int32_t* slot_set, int64_t entries,
                             int64_t slots, int num_q_tiles, int seq_len);

}  // namespace sattn::kernels::cuda
