#include "app/pipeline/attention_config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace app {

namespace {

using json = nlohmann::json;

const char* const kMethodExample = "a method such as \"gna:window=1x16x16,stride=1x8x8\" or \"grat:variant=B,group=1x8x8\"";

rt::Status fail(const std::string& name, const std::string& msg) { return rt::Status::error(name + ": " + msg); }

rt::Result<sattn::MethodSpec> method_value(const json& v, const std::string& name, const std::string& where) {
  if (!v.is_string()) return fail(name, where + ": expected " + kMethodExample + ", got " + v.dump());
  auto m = sattn::parse_method(v.get<std::string>());
  if (!m) return fail(name, where + ": " + m.status().message() + "; expected " + kMethodExample);
  return m;
}

// A layer index: a non-negative integer (JSON number, or a decimal string for the keys of "layers").
bool layer_index(const std::string& s, int* out) {
  if (s.empty() || s.size() > 6 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  *out = std::stoi(s);
  return true;
}

}  // namespace

rt::Result<AttentionConfig> parse_attention_config(const std::string& text, const std::string& name) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    return fail(name, std::string("not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object())
    return fail(name, "expected a JSON object such as {\"method\": \"gna:window=1x16x16\", \"dense_steps\": 2}, got " +
                          std::string(j.type_name()));
  AttentionConfig c;
  c.name = name;
  dit::flux::AttentionPolicy& p = c.policy;
  for (const auto& [key, v] : j.items()) {
    if (key == "method") {
      RT_ASSIGN(p.method, method_value(v, name, "\"method\""));
      c.has_method = true;
    } else if (key == "dense_steps") {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 1000)
        return fail(name, "\"dense_steps\": expected an integer in 0..1000, got " + v.dump());
      p.dense_steps = v.get<int>();
      c.has_dense_steps = true;
    } else if (key == "dense_layers") {
      const std::string expected = "\"dense_layers\": expected an array of layer indices (integers >= 0) such as [0, 5], got ";
      if (!v.is_array()) return fail(name, expected + v.dump());
      for (const json& e : v) {
        int layer = 0;
        if (!e.is_number_integer() || !layer_index(e.dump(), &layer)) return fail(name, expected + e.dump() + " in it");
        if (std::find(p.dense_layers.begin(), p.dense_layers.end(), layer) != p.dense_layers.end())
          return fail(name, "\"dense_layers\": layer " + std::to_string(layer) + " is listed twice");
        p.dense_layers.push_back(layer);
      }
      c.has_dense_layers = true;
    } else if (key == "layers") {
      if (!v.is_object())
        return fail(name, "\"layers\": expected an object from layer index to method such as {\"3\": \"gna:window=1x8x8\"}, got " +
                              v.dump());
      for (const auto& [index, m] : v.items()) {
        int layer = 0;
        if (!layer_index(index, &layer))
          return fail(name, "\"layers\": key \"" + index + "\" is not a layer index; expected a decimal integer >= 0 such as \"3\"");
        RT_ASSIGN(sattn::MethodSpec spec, method_value(m, name, "\"layers\" \"" + index + "\""));
        if (!p.layer_methods.emplace(layer, spec).second)
          return fail(name, "\"layers\": layer " + std::to_string(layer) + " is listed twice");
      }
    } else {
      return fail(name, "unknown key \"" + key + "\"; expected \"method\", \"dense_steps\", \"dense_layers\" or \"layers\"");
    }
  }
  for (int layer : p.dense_layers)
    if (p.layer_methods.count(layer))
      return fail(name, "layer " + std::to_string(layer) + " is in \"dense_layers\" and in \"layers\"; keep one");
  return c;
}

rt::Result<AttentionConfig> load_attention_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) return rt::Status::error(path + ": cannot open the attention config");
  std::stringstream text;
  text << in.rdbuf();
  return parse_attention_config(text.str(), path);
}

std::string attention_fit_errors(const std::vector<LabeledMethod>& methods, int64_t width, int64_t height,
                                 int64_t text_len) {
  for (const LabeledMethod& m : methods) {
    const std::string why = dit::flux::attention_fit_error(m.method, width, height, text_len);
    if (!why.empty()) return m.label + " " + why;
  }
  return "";
}

}  // namespace app
