// Planners: a MaskRule and tile sizes in, a BlockLayout out (block_layout.h). Every planner's layout
// has batch = heads = 1 (the rules here do not vary by batch entry or head) and rule = the input rule.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sparse_attention/block_layout.h"

namespace sattn {

// "" when `rule` can be planned, else why, in words for a user (a window larger than the grid, a stride
// larger than the window, a neighborhood or group rule without a grid, ...).
std::string rule_error(const MaskRule& rule);

// The analytic layout of rule.method (methods/dense.h, gna.h, grat.h); CHECKs rule_error(rule) == "".
BlockLayout plan(const MaskRule& rule, int64_t q_tile, int64_t kv_tile);

// The reference planner: evaluates allowed() on every (query, key) element of every (query tile, key
// tile) pair of the sequence in layout order `perm` (empty = natural order): all allowed -> full, some
// -> partial, none -> not listed. O(L²); the oracle the analytic planners are tested against.
BlockLayout plan_exhaustive(const MaskRule& rule, int64_t q_tile, int64_t kv_tile, std::vector<int32_t> perm = {});

// Appends one (batch, head, query tile) entry to a layout under construction (offsets start as {0}).
// Lists must be sorted, unique and disjoint (validate() checks the result).
void append_entry(BlockLayout& layout, const std::vector<int32_t>& full, const std::vector<int32_t>& partial);

}  // namespace sattn
