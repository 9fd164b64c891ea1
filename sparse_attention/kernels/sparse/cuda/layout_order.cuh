// The layout order of one head on the device (block_layout.h): a layout with per-head perms holds several
// perm sets back to back in `perm` and one set index per layout head in `head_perm`.
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

}  // namespace sattn::kernels::cuda
