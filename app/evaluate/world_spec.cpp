#include "app/evaluate/world_spec.h"

#include <cmath>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

namespace app::eval {

using json = nlohmann::ordered_json;  // keeps the spec's colour order for listings and messages

int WorldSpec::color_index(const std::string& name) const {
  for (size_t i = 0; i < colors.size(); ++i)
    if (colors[i].name == name) return int(i);
  return -1;
}

int WorldSpec::shape_index(const std::string& name) const {
  for (size_t i = 0; i < shapes.size(); ++i)
    if (shapes[i].name == name) return int(i);
  return -1;
}

const PositionSpec* WorldSpec::position_at(int row, int col) const {
  for (const PositionSpec& p : positions)
    if (p.row == row && p.col == col) return &p;
  return nullptr;
}

cv::Vec3d WorldSpec::texture_color(const cv::Vec3d& c) const {
  const double luma = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
  const double target = luma < 128 ? 255.0 : 0.0;
  cv::Vec3d t;
  for (int k = 0; k < 3; ++k) t[k] = c[k] + (target - c[k]) * texture_contrast;
  return t;
}

std::string WorldSpec::size_of_diameter(double d) const {
  for (const SizeSpec& s : sizes)
    if (d < s.upper) return s.name;
  return sizes.back().name;
}

namespace {

// Throws with the key path; load_world_spec turns it into a Status.
struct SpecError {
  std::string msg;
};

const json& at(const json& j, const std::string& key, const std::string& where) {
  if (!j.is_object() || !j.contains(key)) throw SpecError{"missing key \"" + key + "\" in " + where};
  return j.at(key);
}

double number(const json& j, const std::string& key, const std::string& where) {
  const json& v = at(j, key, where);
  if (!v.is_number()) throw SpecError{where + "." + key + ": expected a number, got " + v.dump()};
  return v.get<double>();
}

std::string string_at(const json& j, const std::string& key, const std::string& where) {
  const json& v = at(j, key, where);
  if (!v.is_string()) throw SpecError{where + "." + key + ": expected a string, got " + v.dump()};
  return v.get<std::string>();
}

std::vector<std::string> string_list(const json& j, const std::string& key, const std::string& where) {
  const json& v = at(j, key, where);
  if (!v.is_array() || v.empty()) throw SpecError{where + "." + key + ": expected a non-empty list of strings"};
  std::vector<std::string> out;
  for (const json& e : v) {
    if (!e.is_string()) throw SpecError{where + "." + key + ": expected strings, got " + e.dump()};
    out.push_back(e.get<std::string>());
  }
  return out;
}

// The geometry of world.py's shapes (spec "geometry" strings), at diameter 1.
double unit_area(const std::string& shape, const json& sh, const std::string& where) {
  if (shape == "circle" || shape == "ring") return CV_PI / 4;  // the ring's hole counts (outer contour area)
  if (shape == "square") return 1.0;
  if (shape == "triangle") return std::sqrt(3.0) / 4;
  if (shape == "cross") {
    const double w = number(sh, "arm_width_ratio", where);
    return 2 * w - w * w;
  }
  if (shape == "star") {  // 5 points, outer radius R with width 1, inner radius ratio * R
    const double R = 0.5 / std::sin(72 * CV_PI / 180), r = R * number(sh, "inner_radius_ratio", where);
    return 5 * R * r * std::sin(36 * CV_PI / 180);
  }
  throw SpecError{"shape \"" + shape + "\" has no rule in the evaluator (app/evaluate/analyze.cpp classify_shape)"};
}

WorldSpec parse(const json& j) {
  WorldSpec s;
  for (const auto& [name, rgb] : at(j, "colors", "spec").items()) {
    if (!rgb.is_array() || rgb.size() != 3 || !rgb[0].is_number())
      throw SpecError{"colors." + name + ": expected [r, g, b], got " + rgb.dump()};
    s.colors.push_back({name, cv::Vec3d(rgb[0].get<double>(), rgb[1].get<double>(), rgb[2].get<double>())});
  }
  if (j.contains("color_aliases"))
    for (const auto& [alias, name] : j.at("color_aliases").items()) s.color_aliases[alias] = name.get<std::string>();

  const json& shapes = at(j, "shapes", "spec");
  for (const std::string& name : string_list(j, "shape_order", "spec")) {
    const json& sh = at(shapes, name, "shapes");
    const std::string where = "shapes." + name;
    s.shapes.push_back({name, number(sh, "enclosing_circle_over_diameter", where), unit_area(name, sh, where)});
  }

  const json& sizes = at(j, "sizes", "spec");
  const json& thresholds = at(j, "size_thresholds", "spec");
  const std::vector<std::string> order = string_list(j, "size_order", "spec");
  for (size_t i = 0; i < order.size(); ++i) {
    SizeSpec z{order[i], number(at(sizes, order[i], "sizes"), "diameter", "sizes." + order[i]),
               std::numeric_limits<double>::infinity()};
    if (i + 1 < order.size()) z.upper = number(thresholds, order[i] + "_" + order[i + 1], "size_thresholds");
    s.sizes.push_back(z);
  }

  for (const json& p : at(j, "positions", "spec")) {
    const json& cell = at(p, "cell", "positions[]");
    if (!cell.is_array() || cell.size() != 2) throw SpecError{"positions[].cell: expected [row, col], got " + cell.dump()};
    s.positions.push_back({string_at(p, "name", "positions[]"), string_at(p, "phrase", "positions[]"),
                           cell[0].get<int>(), cell[1].get<int>()});
  }

  const json& bg = at(j, "backgrounds", "spec");
  s.background_colors = string_list(bg, "colors", "backgrounds");
  s.textures = string_list(bg, "textures", "backgrounds");
  s.texture_contrast = number(bg, "texture_contrast", "backgrounds");
  const json& words = at(at(j, "caption_grammar", "spec"), "texture_word", "caption_grammar");
  for (const std::string& t : s.textures) {
    std::string w = string_at(words, t, "caption_grammar.texture_word");
    while (!w.empty() && w.back() == ' ') w.pop_back();
    s.texture_words[t] = w;
  }
  s.min_color_distance = number(j, "min_color_distance", "spec");
  if (const json& g = j.at("caption_grammar"); g.contains("video")) {
    for (const auto& [name, phrase] : at(g.at("video"), "motions", "caption_grammar.video").items()) {
      if (!phrase.is_string()) throw SpecError{"caption_grammar.video.motions." + name + ": expected a string"};
      std::string t = phrase.get<std::string>();
      if (t.rfind("a ", 0) == 0) t = t.substr(2);
      else t = "{size} {color} {shape} " + t;
      s.motion_templates.emplace_back(name, t);
    }
  }

  for (const std::string& c : s.background_colors)
    if (s.color_index(c) < 0) throw SpecError{"backgrounds.colors: \"" + c + "\" is not in colors"};
  for (const auto& [alias, c] : s.color_aliases)
    if (s.color_index(c) < 0) throw SpecError{"color_aliases." + alias + ": \"" + c + "\" is not in colors"};
  if (s.colors.empty() || s.positions.empty()) throw SpecError{"colors and positions must not be empty"};
  return s;
}

}  // namespace

rt::Result<WorldSpec> load_world_spec(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return rt::Status::error("world spec " + path + ": cannot open the file\n  hint: pass --spec PATH "
                             "(the world's spec is tools/world/spec.json in the source tree)");
  try {
    return parse(json::parse(in));
  } catch (const SpecError& e) {
    return rt::Status::error("world spec " + path + ": " + e.msg +
                             "\n  hint: the evaluator reads the keys tools/world/world.py writes; compare with it");
  } catch (const json::exception& e) {
    return rt::Status::error("world spec " + path + ": not valid JSON or wrong type (" + e.what() + ")");
  }
}

}  // namespace app::eval
