#include "sparse_attention/methods/grat.h"

#include <algorithm>

#include "sparse_attention/methods/tiled_plan.h"

namespace sattn {

namespace {

class GroupMethod final : public GridMethod {
 public:
  explicit GroupMethod(const MaskRule& r) : r_(r) {
    for (int a = 0; a < 3; ++a) multi_[a] = r.tokens.grid[a] > r.group[a];
  }
  bool any(const Box& q, const Box& k) const override { return holds(q, k, false); }
  bool all(const Box& q, const Box& k) const override { return holds(q, k, true); }
  void key_regions(const Box& q, std::vector<Box>* out) const override {
    Box whole;
    for (int a = 0; a < 3; ++a) whole.hi[a] = r_.tokens.grid[a];
    if (!r_.criss_cross) {
      Box b;
      for (int a = 0; a < 3; ++a) {
        const int64_t g = r_.group[a];
        b.lo[a] = std::max<int64_t>(q.lo[a] / g - r_.radius, 0) * g;
        b.hi[a] = std::min(((q.hi[a] - 1) / g + r_.radius + 1) * g, whole.hi[a]);
      }
      out->push_back(b);
      return;
    }
    bool any_axis = false;
    for (int a = 0; a < 3; ++a) {
      if (!multi_[a]) continue;
      any_axis = true;
      Box b = whole;
      const int64_t g = r_.group[a];
      b.lo[a] = q.lo[a] / g * g;
      b.hi[a] = std::min(((q.hi[a] - 1) / g + 1) * g, whole.hi[a]);
      out->push_back(b);
    }
    if (!any_axis) out->push_back(whole);
  }

 private:
  struct Groups {
    int64_t q0, q1, k0, k1;  // inclusive group index ranges of the query and key boxes on one axis
  };
  // Variant B: every axis within `radius` group steps. Variant X: the same group on some axis with more
  // than one group; for every_pair that means every pair on one axis, since otherwise one failing pair
  // per axis combines into a pair failing on all of them (the boxes are products).
  bool holds(const Box& q, const Box& k, bool every_pair) const {
    const int64_t b = r_.radius;
    bool any_axis = false;
    for (int a = 0; a < 3; ++a) {
      const Groups g = groups(q, k, a);
      if (!r_.criss_cross) {
        if (every_pair ? (g.q1 - g.k0 > b || g.k1 - g.q0 > b) : (g.k0 - g.q1 > b || g.q0 - g.k1 > b)) return false;
        continue;
      }
      if (!multi_[a]) continue;
      any_axis = true;
      if (every_pair ? (g.q0 == g.q1 && g.k0 == g.k1 && g.q0 == g.k0) : (g.k0 <= g.q1 && g.q0 <= g.k1)) return true;
    }
    return !r_.criss_cross || !any_axis;
  }
  Groups groups(const Box& q, const Box& k, int a) const {
    const int64_t g = r_.group[a];
    return {q.lo[a] / g, (q.hi[a] - 1) / g, k.lo[a] / g, (k.hi[a] - 1) / g};
  }

  MaskRule r_;
  bool multi_[3];
};

}  // namespace

BlockLayout plan_grat(const MaskRule& rule, int64_t q_tile, int64_t kv_tile) {
  return plan_tiled(rule, q_tile, kv_tile, relayout_boxes(rule.tokens, rule.group), GroupMethod(rule));
}

}  // namespace sattn
