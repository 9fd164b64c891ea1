// The PARO planner (sparse-attention.md §3): a loaded plan (paro_plan.h) maps (denoising step, layer) to a
// timestep bucket and then to one BlockLayout with a perm set per candidate axis order and each head's
// order in head_perm. Layouts are built once per (bucket, layer, token layout) and cached in the method
// (shared by every copy of the MethodSpec that loaded it), so generation does not rebuild them per step.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "base/status.h"
#include "sparse_attention/block_layout.h"
#include "sparse_attention/methods/paro_plan.h"

namespace sattn {

// The layout of plan record (bucket, layer) over `rule.tokens` (which must fit the plan: CHECKed) at the
// plan's tiles: heads = plan.heads; per head, every tile that holds a text token is visited, and image
// query tiles visit their kept image key tiles. Tiles holding padded text keys are partial (rule = the
// dense rule over the call's tokens, so padded keys are masked), all others full.
BlockLayout plan_paro(const ParoPlan& plan, int bucket, int64_t layer, const MaskRule& rule);

class ParoMethod {
 public:
  ParoMethod(ParoPlan plan, std::string path);
  static rt::Result<std::shared_ptr<const ParoMethod>> load(const std::string& path);

  const ParoPlan& plan() const { return plan_; }
  const std::string& path() const { return path_; }
  // The path and a hash of the plan's orders and masks: keys device caches of its layouts.
  const std::string& id() const { return id_; }
  int bucket(int step, int num_steps) const { return paro_bucket(step, num_steps, plan_.buckets); }
  // plan_paro(plan(), bucket, layer, rule), cached per (bucket, layer, valid text tokens).
  std::shared_ptr<const BlockLayout> layout(int bucket, int64_t layer, const MaskRule& rule) const;

 private:
  ParoPlan plan_;
  std::string path_, id_;
  mutable std::mutex mu_;
  mutable std::map<std::tuple<int, int64_t, int64_t>, std::shared_ptr<const BlockLayout>> cache_;
};

}  // namespace sattn
