#include "sparse_attention/methods/method_spec.h"

#include <charconv>
#include <vector>

#include "sparse_attention/methods/paro.h"

namespace sattn {

namespace {

rt::Status bad(std::string_view text, const std::string& why) {
  return rt::Status::error("attention method '" + std::string(text) + "': " + why);
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t end = s.find(sep, start);
    parts.push_back(s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// "AxBxC", "BxC" or "C" -> out[0..2], missing leading axes = fill; every value in [lo, 2^31).
rt::Status parse_axes(std::string_view text, std::string_view key, std::string_view value, int64_t lo, int64_t fill,
                      int64_t out[3]) {
  const std::vector<std::string_view> parts = split(value, 'x');
  if (parts.size() > 3) return bad(text, std::string(key) + "=" + std::string(value) + " has more than 3 axes (T x H x W)");
  const size_t skip = 3 - parts.size();
  for (size_t a = 0; a < 3; ++a) out[a] = fill;
  for (size_t i = 0; i < parts.size(); ++i) {
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(parts[i].data(), parts[i].data() + parts[i].size(), v);
    if (parts[i].empty() || ec != std::errc() || end != parts[i].data() + parts[i].size() || v < lo || v > INT32_MAX)
      return bad(text, std::string(key) + "=" + std::string(value) + ": '" + std::string(parts[i]) +
                           "' is not an integer >= " + std::to_string(lo));
    out[skip + i] = v;
  }
  return rt::Status::ok();
}

std::string axes_str(const int64_t v[3]) {
  return std::to_string(v[0]) + "x" + std::to_string(v[1]) + "x" + std::to_string(v[2]);
}

// The shortest decimal that parses back to v.
std::string share_str(double v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : "?";
}

rt::Status parse_gna(std::string_view text, const std::vector<std::string_view>& kv, MaskRule* r) {
  r->method = MaskMethod::Neighborhood;
  bool has_window = false;
  for (std::string_view item : kv) {
    const size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq), value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    if (key == "window") {
      RT_TRY(parse_axes(text, key, value, 1, 1, r->window));
      has_window = true;
    } else if (key == "stride") {
      RT_TRY(parse_axes(text, key, value, 1, 1, r->stride));
    } else if (key == "dilation") {
      RT_TRY(parse_axes(text, key, value, 1, 1, r->dilation));
    } else if (key == "causal") {
      int64_t c[3];
      RT_TRY(parse_axes(text, key, value, 0, 0, c));
      for (int a = 0; a < 3; ++a) {
        if (c[a] > 1) return bad(text, "causal=" + std::string(value) + ": each axis is 0 or 1");
        r->causal[a] = c[a] == 1;
      }
    } else {
      return bad(text, "unknown gna key '" + std::string(key) + "' (known: window, stride, dilation, causal)");
    }
  }
  if (!has_window) return bad(text, "gna needs window=T x H x W (e.g. gna:window=1x24x24)");
  for (int a = 0; a < 3; ++a)
    if (r->stride[a] > r->window[a])
      return bad(text, "stride " + axes_str(r->stride) + " exceeds window " + axes_str(r->window) + " on an axis");
  return rt::Status::ok();
}

rt::Status parse_grat(std::string_view text, const std::vector<std::string_view>& kv, MaskRule* r) {
  r->method = MaskMethod::Group;
  r->group[0] = 1;
  r->group[1] = r->group[2] = 16;
  r->radius = 1;
  for (std::string_view item : kv) {
    const size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq), value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    if (key == "variant") {
      if (value != "B" && value != "X" && value != "b" && value != "x")
        return bad(text, "variant=" + std::string(value) + ": expected B (surrounding groups) or X (criss-cross)");
      r->criss_cross = value == "X" || value == "x";
    } else if (key == "group") {
      RT_TRY(parse_axes(text, key, value, 1, 1, r->group));
    } else if (key == "radius") {
      int64_t v[3];
      RT_TRY(parse_axes(text, key, value, 0, 0, v));
      if (v[0] != 0 || v[1] != 0) return bad(text, "radius=" + std::string(value) + " is one number");
      r->radius = v[2];
    } else {
      return bad(text, "unknown grat key '" + std::string(key) + "' (known: variant, group, radius)");
    }
  }
  return rt::Status::ok();
}

// A share in [0, 1] (the range checks come after every key is read).
rt::Status parse_share(std::string_view text, std::string_view key, std::string_view value, double* out) {
  double v = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (value.empty() || ec != std::errc() || end != value.data() + value.size() || !(v >= 0.0 && v <= 1.0))
    return bad(text, std::string(key) + "=" + std::string(value) + ": expected a number in [0, 1]");
  *out = v;
  return rt::Status::ok();
}

rt::Status parse_sla(std::string_view text, const std::vector<std::string_view>& kv, MethodSpec* spec) {
  spec->dynamic = DynamicMethod::Sla;
  SlaSpec& s = spec->sla;
  for (std::string_view item : kv) {
    const size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq), value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    if (key == "critical") {
      RT_TRY(parse_share(text, key, value, &s.critical));
    } else if (key == "marginal") {
      RT_TRY(parse_share(text, key, value, &s.marginal));
    } else {
      return bad(text, "unknown sla key '" + std::string(key) + "' (known: critical, marginal)");
    }
  }
  // At least one key tile per query tile runs softmax attention, so critical = 0 would still compute one.
  if (s.critical <= 0.0) return bad(text, "critical must be in (0, 1] (the share of key tiles run with softmax)");
  if (s.marginal >= 1.0) return bad(text, "marginal must be in [0, 1)");
  if (s.critical + s.marginal > 1.0 + 1e-12)
    return bad(text, "critical + marginal = " + share_str(s.critical + s.marginal) + " exceeds 1");
  return rt::Status::ok();
}

rt::Status parse_paro(std::string_view text, const std::vector<std::string_view>& kv, MethodSpec* spec) {
  std::string path;
  for (std::string_view item : kv) {
    const size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key != "plan") return bad(text, "unknown paro key '" + std::string(key) + "' (known: plan, quant)");
    path = std::string(value);
  }
  if (path.empty()) return bad(text, "paro needs plan=FILE (a plan written by `ditrun calibrate`)");
  auto loaded = ParoMethod::load(path);
  if (!loaded) return bad(text, loaded.status().message());
  spec->paro = *loaded;
  return rt::Status::ok();
}

}  // namespace

rt::Result<MethodSpec> parse_method(std::string_view text) {
  const size_t colon = text.find(':');
  const std::string_view name = text.substr(0, colon);
  const std::string_view rest = colon == std::string_view::npos ? "" : text.substr(colon + 1);
  MethodSpec spec;
  if (name == "dense" || name == "full") {
    if (colon != std::string_view::npos) return bad(text, "dense takes no parameters");
    return spec;
  }
  if (name != "gna" && name != "grat" && name != "sla" && name != "paro")
    return bad(text, "unknown method '" + std::string(name) + "' (known: dense, full, gna, grat, sla, paro)");
  std::vector<std::string_view> kv;
  if (!rest.empty()) kv = split(rest, ',');
  for (size_t i = 0; i < kv.size(); ++i) {
    if (kv[i].find('=') == std::string_view::npos || kv[i].front() == '=')
      return bad(text, std::string("'").append(kv[i]).append("' is not key=value"));
    for (size_t j = 0; j < i; ++j)
      if (kv[j].substr(0, kv[j].find('=')) == kv[i].substr(0, kv[i].find('=')))
        return bad(text, std::string("key '").append(kv[i].substr(0, kv[i].find('='))).append("' given twice"));
  }
  for (size_t i = 0; i < kv.size(); ++i) {
    if (kv[i].substr(0, kv[i].find('=')) != "quant") continue;
    const std::string_view value = kv[i].substr(kv[i].find('=') + 1);
    if (name == "sla") return bad(text, "quant= is for gna and grat (sla's planned tiles run in bf16)");
    if (!parse_attn_quant(value, &spec.quant))
      return bad(text, "quant=" + std::string(value) +
                           ": expected none, int8 (INT8 Q/K and P·V), int8-fp8pv (INT8 Q/K, FP8 P·V) or int4 "
                           "(INT4 Q/K, INT8 P·V)");
    kv.erase(kv.begin() + i);
    break;
  }
  if (name == "paro") RT_TRY(parse_paro(text, kv, &spec));
  else if (name == "sla") RT_TRY(parse_sla(text, kv, &spec));
  else RT_TRY(name == "gna" ? parse_gna(text, kv, &spec.rule) : parse_grat(text, kv, &spec.rule));
  return spec;
}

std::string method_note(const MethodSpec& s) {
  if (s.dynamic != DynamicMethod::Sla || s.sla.marginal <= 0.0) return "";
  return "sla: marginal=" + share_str(s.sla.marginal) +
         " is ignored: no SLA fine-tuned weights (proj_l) are loaded, so the training-free form runs (softmax over the "
         "critical=" + share_str(s.sla.critical) + " top-k key tiles only)";
}

// The rule-based methods' spelling without the quant part.
static std::string rule_str(const MethodSpec& s);

std::string method_str(const MethodSpec& s) {
  const std::string base = rule_str(s);
  return s.quant == AttnQuant::None ? base : base + ",quant=" + attn_quant_name(s.quant);
}

static std::string rule_str(const MethodSpec& s) {
  if (s.paro) return "paro:plan=" + s.paro->path();
  if (s.dynamic == DynamicMethod::Sla)
    return "sla:critical=" + share_str(s.sla.critical) + ",marginal=" + share_str(s.sla.marginal);
  const MaskRule& r = s.rule;
  switch (r.method) {
    case MaskMethod::Dense: return "dense";
    case MaskMethod::Neighborhood: {
      const int64_t causal[3] = {r.causal[0], r.causal[1], r.causal[2]};
      return "gna:window=" + axes_str(r.window) + ",stride=" + axes_str(r.stride) + ",dilation=" + axes_str(r.dilation) +
             ",causal=" + axes_str(causal);
    }
    case MaskMethod::Group:
      return std::string("grat:variant=") + (r.criss_cross ? "X" : "B") + ",group=" + axes_str(r.group) +
             ",radius=" + std::to_string(r.radius);
  }
  return "?";
}

}  // namespace sattn
