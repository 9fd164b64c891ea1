// The attention method of a call, as users spell it (`--attention`, attention configs, parity fixtures):
//   dense | full
//   gna:window=1x24x24,stride=1x8x8,dilation=1x1x1,causal=0x0x0   (window required; the others default
//       to 1 / not causal; axes T x H x W, and a value with fewer axes fills the leading ones with 1 / 0,
//       so window=24x24 is 1x24x24 for images)
//   grat:variant=B|X,group=1x16x16,radius=1                        (defaults as shown; radius is B's)
// Checks that need the grid (a window larger than an axis) happen when a call plans (rule_error()).
#pragma once
#include <string>
#include <string_view>

#include "base/status.h"
#include "sparse_attention/mask_rule.h"

namespace sattn {

struct MethodSpec {
  // rule.method and its parameters; rule.tokens is not part of the spec (each call brings its own).
  MaskRule rule;

  bool is_dense() const { return rule.method == MaskMethod::Dense; }
  // The spec's rule over a call's tokens.
  MaskRule for_tokens(const TokenLayout& tokens) const {
    MaskRule r = rule;
    r.tokens = tokens;
    return r;
  }
};

rt::Result<MethodSpec> parse_method(std::string_view text);
// The canonical spelling ("dense", "gna:window=1x24x24,stride=1x8x8,dilation=1x1x1,causal=0x0x0",
// "grat:variant=B,group=1x16x16,radius=1"); parse_method(method_str(s)) gives s back.
std::string method_str(const MethodSpec& spec);

}  // namespace sattn
