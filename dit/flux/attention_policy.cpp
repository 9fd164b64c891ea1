#include "dit/flux/attention_policy.h"

#include <algorithm>

namespace dit::flux {

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
