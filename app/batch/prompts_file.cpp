#include "app/batch/prompts_file.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "sparse_attention/methods/method_spec.h"

namespace app {

namespace {

using nlohmann::json;

constexpr const char* kKeys = "prompt, negative_prompt, width, height, steps, guidance, seed, attention, dense_steps, name";

std::string_view trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// The error of a key whose value has the wrong type, naming what is expected.
std::string type_error(const std::string& key, const json& v, const char* expected) {
  return "\"" + key + "\" must be " + expected + ", not " + v.dump();
}

// An integer in [lo, hi] (JSON numbers like 512.0 count; 512.5 does not).
std::string read_int(const std::string& key, const json& v, int64_t lo, int64_t hi, int64_t* out) {
  if (v.is_number_integer() || v.is_number_unsigned()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)) return "\"" + key + "\" " + v.dump() + " is out of range";
    *out = v.get<int64_t>();
  } else if (v.is_number_float() && std::isfinite(v.get<double>()) && v.get<double>() == std::floor(v.get<double>()) &&
             std::fabs(v.get<double>()) < 9e15) {
    *out = int64_t(v.get<double>());
  } else {
    return type_error(key, v, "an integer");
  }
  if (*out < lo || *out > hi)
    return "\"" + key + "\" " + std::to_string(*out) + " is out of range; use " + std::to_string(lo) + ".." + std::to_string(hi);
  return "";
}

std::string read_string(const std::string& key, const json& v, std::string* out) {
  if (!v.is_string()) return type_error(key, v, "a string");
  *out = v.get<std::string>();
  return "";
}

// One key of a JSON line into item; "" or the error.
std::string read_key(const std::string& key, const json& v, PromptItem& item) {
  ItemOverrides& o = item.overrides;
  int64_t n = 0;
  std::string s, why;
  if (key == "prompt") return read_string(key, v, &item.prompt);
  if (key == "negative_prompt") {
    if (!(why = read_string(key, v, &s)).empty()) return why;
    o.negative_prompt = s;
    return "";
  }
  if (key == "name") {
    if (!(why = read_string(key, v, &s)).empty()) return why;
    if (!(why = output_name_error(s)).empty()) return why;
    item.name = s;
    return "";
  }
  if (key == "width" || key == "height") {
    if (!(why = read_int(key, v, INT64_MIN, INT64_MAX, &n)).empty()) return why;
    if (!(why = image_side_error("\"" + key + "\"", n)).empty()) return why;
    (key == "width" ? o.width : o.height) = n;
    return "";
  }
  if (key == "steps") {
    if (!(why = read_int(key, v, 1, 1000, &n)).empty()) return why;
    o.steps = int(n);
    return "";
  }
  if (key == "dense_steps") {
    if (!(why = read_int(key, v, 0, 1000, &n)).empty()) return why;
    o.dense_steps = int(n);
    return "";
  }
  if (key == "seed") {
    // Seeds are non-negative (torch.Generator.manual_seed takes them modulo 2^64; JSON readers lose
    // integers above 2^53, so larger seeds would not round-trip through the manifest anyway).
    if (!(why = read_int(key, v, 0, int64_t(1) << 53, &n)).empty()) return why;
    o.seed = uint64_t(n);
    return "";
  }
  if (key == "guidance") {
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0)
      return type_error(key, v, "a finite number >= 0");
    o.guidance = v.get<float>();
    return "";
  }
  if (key == "attention") {
    if (!(why = read_string(key, v, &s)).empty()) return why;
    auto method = sattn::parse_method(s);
    if (!method) return "\"attention\" " + s + ": " + method.status().message();
    o.attention = sattn::method_str(*method);  // canonical, so equal methods group together
    return "";
  }
  return "unknown key \"" + key + "\"; the keys are " + kKeys;
}

void parse_json_line(std::string_view text, PromptItem& item) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    // nlohmann's message starts with "[json.exception.parse_error.101] parse error at line 1, column N: ...".
    std::string what = e.what();
    const size_t at = what.find("parse error");
    item.error = "invalid JSON: " + (at == std::string::npos ? what : what.substr(at));
    return;
  }
  if (!j.is_object()) {
    item.error = "expected a JSON object with a \"prompt\", not " + j.dump();
    return;
  }
  if (!j.contains("prompt")) {
    item.error = "missing \"prompt\"";
    return;
  }
  for (const auto& [key, v] : j.items()) {
    if (std::string why = read_key(key, v, item); !why.empty()) {
      item.error = why;
      return;
    }
  }
}

}  // namespace

std::string image_side_error(const std::string& what, int64_t v) {
  if (v < 16 || v > 8192) return what + " " + std::to_string(v) + " is out of range; use 16..8192 in steps of 16";
  if (v % 16 != 0) {
    const int64_t lo = v / 16 * 16;
    return what + " " + std::to_string(v) + " is not a multiple of 16 (Flux packs 2x2 patches of 8x smaller latents); nearest valid: " +
           std::to_string(lo) + " or " + std::to_string(lo + 16);
  }
  return "";
}

std::string output_name_error(const std::string& name) {
  if (name.empty()) return "\"name\" is empty";
  if (name.size() > 100) return "\"name\" is longer than 100 characters";
  if (name[0] == '.') return "\"name\" " + name + " must not start with '.'";
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return "\"name\" " + name + " may hold only letters, digits, '.', '_' and '-' (it names the output file)";
  return "";
}

std::optional<PromptItem> parse_prompt_line(std::string_view line, int line_no) {
  const std::string_view text = trim(line);
  if (text.empty() || text[0] == '#') return std::nullopt;
  PromptItem item;
  item.line = line_no;
  if (text[0] == '{') {
    parse_json_line(text, item);
  } else {
    item.prompt = std::string(text);
  }
  if (item.error.empty() && trim(item.prompt).empty()) item.error = "empty prompt";
  if (!item.error.empty()) item.prompt.clear();
  return item;
}

std::vector<PromptItem> parse_prompts(std::string_view text) {
  std::vector<PromptItem> items;
  int line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    ++line_no;
    if (auto item = parse_prompt_line(text.substr(pos, end - pos), line_no)) items.push_back(std::move(*item));
    pos = end + 1;
  }
  return items;
}

rt::Result<std::vector<PromptItem>> read_prompts_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return rt::Status::error("cannot open prompts file " + path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return rt::Status::error("cannot read prompts file " + path + ": " + std::strerror(errno));
  return parse_prompts(ss.str());
}

}  // namespace app
