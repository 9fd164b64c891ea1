#include "sparse_attention/methods/plan.h"

#include <sstream>

#include "base/check.h"
#include "sparse_attention/methods/dense.h"
#include "sparse_attention/methods/gna.h"
#include "sparse_attention/methods/grat.h"

namespace sattn {

std::string rule_error(const MaskRule& r) {
  const TokenLayout& t = r.tokens;
  std::ostringstream e;
  if (t.text_len < 0 || t.text_valid > t.text_len)
    e << "text segment of " << t.text_len << " tokens with " << t.text_valid << " valid ones";
  else if (t.grid[1] != 0 && (t.grid[0] < 1 || t.grid[1] < 1 || t.grid[2] < 1))
    e << "grid " << t.grid[0] << "x" << t.grid[1] << "x" << t.grid[2] << " has an empty axis";
  else if (r.method != MaskMethod::Dense && t.grid_tokens() == 0)
    e << "a " << (r.method == MaskMethod::Group ? "grat" : "gna") << " rule needs a token grid (this call has none)";
  if (!e.str().empty() || r.method == MaskMethod::Dense) return e.str();
  static const char* kAxis[3] = {"T", "H", "W"};
  for (int a = 0; a < 3 && e.str().empty(); ++a) {
    const int64_t len = t.grid[a];
    if (r.method == MaskMethod::Group) {
      if (r.group[a] < 1) e << "grat group " << r.group[a] << " on axis " << kAxis[a] << " must be >= 1";
      continue;
    }
    const int64_t w = r.window[a], s = r.stride[a], d = r.dilation[a];
    if (w < 1 || s < 1 || d < 1)
      e << "gna window, stride and dilation must be >= 1, got " << w << ", " << s << ", " << d << " on axis " << kAxis[a];
    else if (s > w)
      e << "gna stride " << s << " is larger than the window " << w << " on axis " << kAxis[a];
    else if (w * d > len)
      e << "gna window " << w << (d > 1 ? " x dilation " + std::to_string(d) : std::string()) << " is larger than the grid's "
        << kAxis[a] << " axis of " << len << " tokens (grid " << t.grid[0] << "x" << t.grid[1] << "x" << t.grid[2] << ")";
  }
  if (e.str().empty() && r.method == MaskMethod::Group && r.radius < 0) e << "grat radius " << r.radius << " must be >= 0";
  return e.str();
}

BlockLayout plan(const MaskRule& rule, int64_t q_tile, int64_t kv_tile) {
  const std::string why = rule_error(rule);
  CHECK(why.empty(), "plan: ", why);
  switch (rule.method) {
    case MaskMethod::Dense: return plan_dense(rule, q_tile, kv_tile);
    case MaskMethod::Neighborhood: return plan_gna(rule, q_tile, kv_tile);
    case MaskMethod::Group: return plan_grat(rule, q_tile, kv_tile);
  }
  CHECK(false, "plan: unknown method ", int(rule.method));
  return {};
}

}  // namespace sattn
