// Parity runner for `attention` (parity-fixtures.md, "The attention module"): q, k, v [B, S, H, D] over a
// token grid and an optional (padded) text segment, method dense | gna | grat with its params; output
// `out` = sattn::attention with the default scale, inputs cast to the context's dtype.
#include <string>

#include "app/parity/runners.h"
#include "ops.h"
#include "sparse_attention/attention.h"
#include "sparse_attention/methods/plan.h"

namespace app::parity {

namespace {

rt::Status config_error(const ParityFixture& f, const std::string& why) {
  return rt::Status::error(f.path + ": attention config: " + why);
}

// A per-axis JSON array of 1 to 3 integers (fewer: the leading axes take `fill`), or the default.
rt::Status axes(const ParityFixture& f, const nlohmann::json& params, const char* key, int64_t fill, int64_t out[3]) {
  if (!params.contains(key)) return rt::Status::ok();
  const nlohmann::json& v = params[key];
  if (!v.is_array() || v.empty() || v.size() > 3)
    return config_error(f, std::string("params.") + key + " must be an array of 1 to 3 per-axis values, got " + v.dump());
  const size_t skip = 3 - v.size();
  for (size_t a = 0; a < 3; ++a) out[a] = fill;
  for (size_t i = 0; i < v.size(); ++i) out[skip + i] = v[i].is_boolean() ? int64_t(v[i].get<bool>()) : v[i].get<int64_t>();
  return rt::Status::ok();
}

rt::Result<sattn::MaskRule> rule_from(const ParityFixture& f, int64_t seq_len) {
  const nlohmann::json& c = f.config;
  sattn::MaskRule r;
  const nlohmann::json grid = c.value("grid", nlohmann::json::array());
  if (!grid.is_array() || grid.empty() || grid.size() > 3)
    return config_error(f, "'grid' must be [T, H, W] (or [H, W]), got " + grid.dump());
  r.tokens.grid[0] = r.tokens.grid[1] = 1;
  for (size_t i = 0; i < grid.size(); ++i) r.tokens.grid[3 - grid.size() + i] = grid[i].get<int64_t>();
  r.tokens.text_len = c.value("text_len", int64_t(0));
  r.tokens.text_valid = c.value("text_valid", r.tokens.text_len);
  const std::string position = c.value("text_position", std::string("before"));
  if (position != "before" && position != "after")
    return config_error(f, "text_position must be \"before\" or \"after\", got \"" + position + "\"");
  r.tokens.text_before = position == "before";
  const std::string method = c.value("method", std::string());
  const nlohmann::json params = c.value("params", nlohmann::json::object());
  if (method == "gna") {
    r.method = sattn::MaskMethod::Neighborhood;
    if (!params.contains("window")) return config_error(f, "gna needs params.window");
    int64_t causal[3] = {0, 0, 0};
    RT_TRY(axes(f, params, "window", 1, r.window));
    RT_TRY(axes(f, params, "stride", 1, r.stride));
    RT_TRY(axes(f, params, "dilation", 1, r.dilation));
    RT_TRY(axes(f, params, "causal", 0, causal));
    for (int a = 0; a < 3; ++a) r.causal[a] = causal[a] != 0;
  } else if (method == "grat") {
    r.method = sattn::MaskMethod::Group;
    const std::string variant = params.value("variant", std::string("B"));
    if (variant != "B" && variant != "X") return config_error(f, "grat variant must be \"B\" or \"X\", got \"" + variant + "\"");
    r.criss_cross = variant == "X";
    if (!params.contains("group")) return config_error(f, "grat needs params.group");
    RT_TRY(axes(f, params, "group", 1, r.group));
    r.radius = params.value("radius", int64_t(1));
  } else if (method != "dense") {
    return config_error(f, "method must be \"dense\", \"gna\" or \"grat\", got \"" + method + "\"");
  }
  if (const std::string why = sattn::rule_error(r); !why.empty()) return config_error(f, why);
  if (r.tokens.seq_len() != seq_len)
    return config_error(f, "grid and text hold " + std::to_string(r.tokens.seq_len()) + " tokens but q has " +
                               std::to_string(seq_len));
  return r;
}

}  // namespace

rt::Result<ParityOutputs> run_attention(const rt::Context& ctx, const ParityFixture& f) {
  sattn::AttentionParams p;
  RT_ASSIGN(p.q, fixture_input(f, "q"));
  RT_ASSIGN(p.k, fixture_input(f, "k"));
  RT_ASSIGN(p.v, fixture_input(f, "v"));
  for (rt::Tensor* t : {&p.q, &p.k, &p.v}) {
    if (t->dim() != 4 || t->shape() != p.q.shape())
      return rt::Status::error(f.path + ": attention inputs q, k, v must share one shape [B, S, H, D], got q " +
                               p.q.str() + " k " + p.k.str() + " v " + p.v.str());
    *t = rt::cast(ctx, *t, ctx.dtype());
  }
  RT_ASSIGN(const sattn::MaskRule rule, rule_from(f, p.q.size(1)));
  p.tokens = rule.tokens;
  p.method.rule = rule;
  return ParityOutputs{{"out", sattn::attention(ctx, p)}};
}

}  // namespace app::parity
