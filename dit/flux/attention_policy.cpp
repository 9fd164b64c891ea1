#include "dit/flux/attention_policy.h"

#include <algorithm>

#include "sparse_attention/methods/plan.h"

namespace dit::flux {

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
  const std::string why = sattn::rule_error(method.for_tokens(tokens));
  if (why.empty()) return "";
  return "does not fit " + std::to_string(width) + "x" + std::to_string(height) + " (a " + std::to_string(tokens.grid[1]) +
         "x" + std::to_string(tokens.grid[2]) + " token grid): " + why;
}

sattn::MethodSpec AttentionPolicy::method_for(int step, int layer) const {
  const bool dense = step < dense_steps || std::find(dense_layers.begin(), dense_layers.end(), layer) != dense_layers.end();
  return dense ? sattn::MethodSpec{} : method;
}

std::string AttentionPolicy::dense_key(int step, int num_layers) const {
  std::string key;
  for (int layer = 0; layer < num_layers; ++layer) key += method_for(step, layer).is_dense() ? 'd' : 's';
  return key;
}

std::string AttentionPolicy::describe() const {
  std::string s = sattn::method_str(method);
  if (method.is_dense()) return s;
  if (dense_steps > 0) s += " after " + std::to_string(dense_steps) + " dense step" + (dense_steps == 1 ? "" : "s");
  if (!dense_layers.empty()) {
    s += dense_steps > 0 ? ", dense layers" : " with dense layers";
    for (size_t i = 0; i < dense_layers.size(); ++i) {
      s += i ? ',' : ' ';
      s += std::to_string(dense_layers[i]);
    }
  }
  return s;
}

}  // namespace dit::flux
