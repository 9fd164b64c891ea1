// The attention method of a call, as users spell it (`--attention`, attention configs, parity fixtures):
//   dense | full
//   gna:window=1x24x24,stride=1x8x8,dilation=1x1x1,causal=0x0x0   (window required; the others default
//       to 1 / not causal; axes T x H x W, and a value with fewer axes fills the leading ones with 1 / 0,
//       so window=24x24 is 1x24x24 for images)
//   grat:variant=B|X,group=1x16x16,radius=1                        (defaults as shown; radius is B's)
//   sla:critical=0.05,marginal=0.1                                   (defaults as shown; SLA, §4 of
//       sparse-attention.md: per query tile, the ceil(critical·n) key tiles of highest pooled score run
//       softmax attention, the next ceil(marginal·n) go to the linear branch when the layer has SLA weights;
//       critical in (0, 1], marginal in [0, 1), critical + marginal <= 1)
//   paro:plan=FILE                                                   (PARO, §3: a plan written by `ditrun
//       calibrate`, loaded when the spec is parsed; per timestep bucket, layer and head an axis order and
//       static block masks, methods/paro.h)
//   gna, grat and paro also take quant=int8 | int8-fp8pv | int4 (quantized attention, quant.h: INT8 or INT4
//   Q/K with K smoothing, INT8 or FP8 P·V; the CPU runs its reference).
// Checks that need the grid (a window larger than an axis) happen when a call plans (rule_error()).
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "sparse_attention/mask_rule.h"
#include "sparse_attention/quant.h"

namespace sattn {

class ParoMethod;  // methods/paro.h

// Methods that choose key tiles from the call's q and k (dynamic, sparse-attention.md §0.2). They have no
// element rule: which keys a query sees depends on the data, so allowed() cannot say it. A dynamic spec
// keeps rule.method = Dense, so that every rule-based path (rule_error, plan, allowed on padded text) sees
// the valid keys and nothing else, and the planner (methods/topk.h) picks the tiles per call.
enum class DynamicMethod : int32_t { None = 0, Sla = 1 };

struct SlaSpec {
  double critical = 0.05;  // share of key tiles per query tile run with softmax (the top-k share)
  double marginal = 0.10;  // share of the following ones sent to the linear branch (needs SLA weights)
};

struct MethodSpec {
  MethodSpec() = default;
  explicit MethodSpec(const MaskRule& r) : rule(r) {}  // a rule-based method (dense, gna, grat)

  // rule.method and its parameters; rule.tokens is not part of the spec (each call brings its own).
  MaskRule rule;
  DynamicMethod dynamic = DynamicMethod::None;
  SlaSpec sla;  // dynamic == Sla
  AttnQuant quant = AttnQuant::None;  // rule-based sparse methods and paro
  // paro:plan=FILE: the loaded plan (rule.method stays Dense: text and padding follow the dense rule).
  std::shared_ptr<const ParoMethod> paro;

  bool is_dense() const { return rule.method == MaskMethod::Dense && dynamic == DynamicMethod::None && !paro; }
  bool is_dynamic() const { return dynamic != DynamicMethod::None; }
  // The spec's rule over a call's tokens.
  MaskRule for_tokens(const TokenLayout& tokens) const {
    MaskRule r = rule;
    r.tokens = tokens;
    return r;
  }
};

rt::Result<MethodSpec> parse_method(std::string_view text);
// One line for users about a part of the spec that this build cannot honour (SLA's marginal share without
// fine-tuned projection weights), or "" (print it once, where the method is chosen).
std::string method_note(const MethodSpec& spec);
// The canonical spelling ("dense", "gna:window=1x24x24,stride=1x8x8,dilation=1x1x1,causal=0x0x0",
// "grat:variant=B,group=1x16x16,radius=1", "sla:critical=0.05,marginal=0.1": shortest round-trip decimals);
// parse_method(method_str(s)) gives s back.
std::string method_str(const MethodSpec& spec);

}  // namespace sattn
