#include "sparse_attention/methods/paro.h"

#include "base/check.h"
#include "sparse_attention/methods/plan.h"

namespace sattn {

BlockLayout plan_paro(const ParoPlan& plan, int bucket, int64_t layer, const MaskRule& rule) {
  const TokenLayout& t = rule.tokens;
  const std::string misfit = paro_tokens_error(plan, t);
  CHECK(misfit.empty(), "paro: ", misfit);
  CHECK(bucket >= 0 && bucket < plan.buckets && layer >= 0 && layer < plan.layers, "paro: bucket ", bucket,
        " layer ", layer, " outside the plan's ", plan.buckets, " buckets x ", plan.layers, " layers");
  BlockLayout l;
  l.q_tile = plan.q_tile, l.kv_tile = plan.kv_tile, l.seq_len = t.seq_len(), l.heads = plan.heads, l.rule = rule;
  for (const AxisOrder& o : axis_orders(t.grid)) {
    const std::vector<int32_t> perm = axis_order_perm(t, o);
    l.perm.insert(l.perm.end(), perm.begin(), perm.end());
  }
  const TileRange qr = image_tiles(t, plan.q_tile), kr = image_tiles(t, plan.kv_tile);
  // Key tiles holding a padded text key (text stays in place, so the same in every order) are partial.
  std::vector<char> padded(static_cast<size_t>(l.num_kv_tiles()), 0);
  for (int64_t i = 0; i < t.text_len; ++i)
    if (i >= t.valid_text()) padded[size_t((t.text_before ? i : t.grid_tokens() + i) / plan.kv_tile)] = 1;
  l.full_offsets = l.partial_offsets = {0};
  std::vector<int32_t> full, partial;
  for (int64_t h = 0; h < plan.heads; ++h) {
    const int64_t r = plan.record(bucket, layer, h);
    l.head_perm.push_back(int32_t(plan.order[size_t(r)]));
    for (int64_t qt = 0; qt < l.num_q_tiles(); ++qt) {
      full.clear(), partial.clear();
      const bool image_row = qt >= qr.begin && qt < qr.end;
      for (int64_t kt = 0; kt < l.num_kv_tiles(); ++kt) {
        const bool image_col = kt >= kr.begin && kt < kr.end;
        if (image_row && image_col && !plan.mask(r)[(qt - qr.begin) * kr.size() + (kt - kr.begin)]) continue;
        (padded[size_t(kt)] ? partial : full).push_back(int32_t(kt));
      }
      append_entry(l, full, partial);
    }
  }
  return l;
}

ParoMethod::ParoMethod(ParoPlan plan, std::string path) : plan_(std::move(plan)), path_(std::move(path)) {
  uint64_t h = 1469598103934665603ull;
  for (const std::vector<uint8_t>* v : {&plan_.order, &plan_.keep})
    for (uint8_t c : *v) h = (h ^ c) * 1099511628211ull;
  id_ = path_ + "#" + std::to_string(h);
}

rt::Result<std::shared_ptr<const ParoMethod>> ParoMethod::load(const std::string& path) {
  RT_ASSIGN(ParoPlan plan, read_paro_plan(path));
  return std::shared_ptr<const ParoMethod>(std::make_shared<ParoMethod>(std::move(plan), path));
}

std::shared_ptr<const BlockLayout> ParoMethod::layout(int bucket, int64_t layer, const MaskRule& rule) const {
  const auto key = std::make_tuple(bucket, layer, rule.tokens.valid_text());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  }
  auto l = std::make_shared<const BlockLayout>(plan_paro(plan_, bucket, layer, rule));
  std::lock_guard<std::mutex> lock(mu_);
  return cache_.emplace(key, l).first->second;
}

}  // namespace sattn
