// Dense planner: natural token order, every key tile visited; only padded text keys make tiles partial
// (or skipped when a key tile holds nothing but padding).
#pragma once
#include "sparse_attention/block_layout.h"

namespace sattn {

BlockLayout plan_dense(const MaskRule& rule, int64_t q_tile, int64_t kv_tile);

}  // namespace sattn
