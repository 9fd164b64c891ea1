#include "dit/flux/attention_policy.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <set>

#include "sparse_attention/kernels/sparse/block_sparse.h"
#include "sparse_attention/methods/paro.h"
#include "sparse_attention/methods/plan.h"
#include "sparse_attention/methods/structured.h"

namespace dit::flux {

// Decisions per (method, token layout, tensor kind), and the (method, reason) pairs already logged.
struct AttentionPolicy::FallbackCache {
  std::mutex mu;
  std::map<std::string, std::string> reasons;
  std::set<std::string> logged;
};

std::shared_ptr<AttentionPolicy::FallbackCache> AttentionPolicy::make_fallback_cache() {
  return std::make_shared<FallbackCache>();
}

sattn::TokenLayout joint_tokens(int64_t text_len, int64_t grid_h, int64_t grid_w) {
  sattn::TokenLayout t;
  t.grid[0] = 1;
  t.grid[1] = grid_h;
  t.grid[2] = grid_w;
  t.text_len = text_len;
  t.text_before = true;
  return t;
}

std::string attention_fit_error(const sattn::MethodSpec& method, int64_t width, int64_t height, int64_t text_len) {
  if (method.is_dense()) return "";
  const sattn::TokenLayout tokens = joint_tokens(text_len, height / 16, width / 16);
  const std::string why = method.paro ? sattn::paro_tokens_error(method.paro->plan(), tokens)
                                      : sattn::rule_error(method.for_tokens(tokens));
  if (why.empty()) return "";
  return "does not fit " + std::to_string(width) + "x" + std::to_string(height) + " (a " + std::to_string(tokens.grid[1]) +
         "x" + std::to_string(tokens.grid[2]) + " token grid): " + why;
}

std::string dense_fallback_reason(const rt::Context& ctx, const sattn::AttentionParams& p) {
  if (p.method.is_dense() || !sattn::rule_error(p.method.for_tokens(p.tokens)).empty()) return "";
  if (p.method.paro && !sattn::paro_tokens_error(p.method.paro->plan(), p.tokens).empty()) return "";
  const std::shared_ptr<const sattn::BlockLayout> layout = sattn::structured_layout(ctx, p);
  const double density = layout->tile_density();
  if (density >= kDenseFallbackTileDensity) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "tile density %.2f >= %.2f (the block-sparse kernel would be slower than dense)",
                  density, kDenseFallbackTileDensity);
    return buf;
  }
  if (p.q.device().is_cuda() && p.kernel == sattn::DenseKernel::Auto) {
    const std::string refusal = sattn::kernels::block_sparse_refusal(p, *layout);
    if (!refusal.empty()) return refusal + " (the masked dense reference in its place would be slower than dense)";
  }
  return "";
}

sattn::MethodSpec AttentionPolicy::method_for(int step, int layer) const {
  if (step < dense_steps || std::find(dense_layers.begin(), dense_layers.end(), layer) != dense_layers.end())
    return sattn::MethodSpec{};
  const auto it = layer_methods.find(layer);
  return it == layer_methods.end() ? method : it->second;
}

// What the fallback decision depends on besides the method: the tokens and the tensors' kind.
static std::string call_kind(const sattn::AttentionParams& p) {
  const sattn::TokenLayout& t = p.tokens;
  char buf[200];
  std::snprintf(buf, sizeof buf, "|%lldx%lldx%lld|%lld/%lld/%d|%s|%s|%lld/%lld/%lld/%lld|%d", (long long)t.grid[0],
                (long long)t.grid[1], (long long)t.grid[2], (long long)t.text_len, (long long)t.valid_text(),
                int(t.text_before), rt::device_str(p.q.device()).c_str(), rt::dtype_name(p.q.dtype()),
                (long long)p.q.size(0), (long long)p.q.size(2), (long long)p.q.size(3), (long long)p.v.size(3),
                int(p.kernel));
  return buf;
}

sattn::MethodSpec AttentionPolicy::call_method(const rt::Context& ctx, const sattn::AttentionParams& p) const {
  if (!fallback || p.method.is_dense()) return p.method;
  const std::string name = sattn::method_str(p.method);
  std::string key = name + call_kind(p);
  if (p.method.paro)  // a PARO plan's density differs per layer and timestep bucket
    key += "|layer " + std::to_string(p.layer_index) + "|bucket " +
           std::to_string(p.method.paro->bucket(p.step_index, p.num_steps));
  FallbackCache& cache = *fallback_cache;
  std::string reason;
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    const auto it = cache.reasons.find(key);
    if (it != cache.reasons.end()) return it->second.empty() ? p.method : sattn::MethodSpec{};
  }
  reason = dense_fallback_reason(ctx, p);  // plans outside the lock
  std::lock_guard<std::mutex> lock(cache.mu);
  cache.reasons.emplace(key, reason);
  if (reason.empty()) return p.method;
  if (cache.logged.insert(name + "|" + reason).second && ctx.log_level() >= rt::LogLevel::Info)
    std::fprintf(stderr, "ditrun: attention: %s falls back to dense on %s at %lldx%lld tokens: %s\n", name.c_str(),
                 layers_of(p.method).c_str(), (long long)p.tokens.grid[1], (long long)p.tokens.grid[2],
                 reason.c_str());
  return sattn::MethodSpec{};
}

bool AttentionPolicy::any_sparse() const {
  if (!method.is_dense()) return true;
  return std::any_of(layer_methods.begin(), layer_methods.end(), [&](const auto& lm) {
    return !lm.second.is_dense() &&
           std::find(dense_layers.begin(), dense_layers.end(), lm.first) == dense_layers.end();
  });
}

std::vector<sattn::MethodSpec> AttentionPolicy::distinct_methods() const {
  std::vector<sattn::MethodSpec> out{sattn::MethodSpec{}};
  std::vector<std::string> names{sattn::method_str(out[0])};
  auto add = [&](const sattn::MethodSpec& m) {
    const std::string n = sattn::method_str(m);
    if (std::find(names.begin(), names.end(), n) != names.end()) return;
    names.push_back(n);
    out.push_back(m);
  };
  add(method);
  for (const auto& [layer, m] : layer_methods) add(m);
  return out;
}

std::string AttentionPolicy::dense_key(int step, int num_layers) const {
  const std::string base = sattn::method_str(method);
  std::vector<std::string> others;  // per-layer methods other than dense and `method`, in layer order
  for (const sattn::MethodSpec& m : distinct_methods())
    if (!m.is_dense() && sattn::method_str(m) != base) others.push_back(sattn::method_str(m));
  std::string key;
  for (int layer = 0; layer < num_layers; ++layer) {
    const sattn::MethodSpec m = method_for(step, layer);
    const std::string name = sattn::method_str(m);
    const size_t id = size_t(std::find(others.begin(), others.end(), name) - others.begin());
    if (m.is_dense()) key += 'd';
    else if (m.paro) key += "<p" + std::to_string(m.paro->bucket(step, num_steps)) + ">";  // layouts per bucket
    else if (name == base) key += 's';
    else if (id < 26) key += char('A' + id);
    else key += "<" + std::to_string(id) + ">";
  }
  return key;
}

static std::string join(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

std::string AttentionPolicy::layers_of(const sattn::MethodSpec& m) const {
  const std::string name = sattn::method_str(m);
  auto dense_layer = [&](int l) { return std::find(dense_layers.begin(), dense_layers.end(), l) != dense_layers.end(); };
  std::vector<int> own, others;  // layers listed in layer_methods that run m / another method
  for (const auto& [layer, lm] : layer_methods)
    if (!dense_layer(layer)) (sattn::method_str(lm) == name ? own : others).push_back(layer);
  if (sattn::method_str(method) != name) return (own.size() == 1 ? "layer " : "layers ") + join(own);
  for (int l : dense_layers) others.push_back(l);
  std::sort(others.begin(), others.end());
  others.erase(std::unique(others.begin(), others.end()), others.end());
  return others.empty() ? "every layer" : "every layer but " + join(others);
}

std::string AttentionPolicy::layer_error(int num_layers) const {
  auto bad = [&](int l) { return l < 0 || l >= num_layers; };
  const std::string range = "; the model has " + std::to_string(num_layers) + " layers (0.." + std::to_string(num_layers - 1) + ")";
  for (int l : dense_layers)
    if (bad(l)) return "dense layer " + std::to_string(l) + " is out of range" + range;
  for (const auto& [l, m] : layer_methods)
    if (bad(l)) return "layer " + std::to_string(l) + " (" + sattn::method_str(m) + ") is out of range" + range;
  for (const sattn::MethodSpec& m : distinct_methods())
    if (m.paro && m.paro->plan().layers != num_layers)
      return sattn::method_str(m) + ": the plan was calibrated for a model with " + std::to_string(m.paro->plan().layers) +
             " layers, this model has " + std::to_string(num_layers) + ": run ditrun calibrate on this model";
  return "";
}

std::string AttentionPolicy::describe() const {
  std::string s = sattn::method_str(method);
  if (!any_sparse()) return s;
  std::vector<std::string> parts;
  if (dense_steps > 0) s += " after " + std::to_string(dense_steps) + " dense step" + (dense_steps == 1 ? "" : "s");
  if (!dense_layers.empty()) parts.push_back("dense layers " + join(dense_layers));
  for (const auto& [layer, m] : layer_methods) parts.push_back("layer " + std::to_string(layer) + " " + sattn::method_str(m));
  for (size_t i = 0; i < parts.size(); ++i) s += (i == 0 && dense_steps == 0 ? " with " : ", ") + parts[i];
  return s;
}

}  // namespace dit::flux
