#include "sparse_attention/methods/dense.h"

#include "sparse_attention/methods/tiled_plan.h"

namespace sattn {

namespace {

class DenseMethod final : public GridMethod {
 public:
  explicit DenseMethod(const TokenLayout& t) : t_(t) {}
  bool any(const Box&, const Box&) const override { return true; }
  bool all(const Box&, const Box&) const override { return true; }
  void key_regions(const Box&, std::vector<Box>* out) const override {
    Box b;
    for (int a = 0; a < 3; ++a) b.hi[a] = t_.grid[a];
    out->push_back(b);
  }

 private:
  TokenLayout t_;
};

}  // namespace

BlockLayout plan_dense(const MaskRule& rule, int64_t q_tile, int64_t kv_tile) {
  return plan_tiled(rule, q_tile, kv_tile, relayout_boxes(rule.tokens, rule.tokens.grid, true), DenseMethod(rule.tokens));
}

}  // namespace sattn
