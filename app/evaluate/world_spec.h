// The procedural shapes world's vocabulary and geometry, read from tools/world/spec.json (the single
// source of truth shared with the Python generator tools/world/world.py). Only what the evaluator
// needs is kept; the loader fails with the missing/invalid key named, so a spec edit that breaks the
// C++ side says where.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "base/status.h"

namespace app::eval {

struct NamedColor {
  std::string name;
  cv::Vec3d rgb;  // 0..255
};

struct ShapeSpec {
  std::string name;
  // minEnclosingCircle diameter / nominal diameter d: turns the measured enclosing circle into d.
  double enclosing_over_diameter = 1;
  // Area of the shape at d = 1 (holes included): d = sqrt(area / unit_area). Area survives blur and the
  // median filter far better than the enclosing circle, which loses the star's and triangle's tips.
  double unit_area = 1;
};

struct SizeSpec {
  std::string name;
  double diameter = 0;  // nominal d, fraction of the image side
  double upper = 0;     // d below this (and at/above the previous size's upper) is this size; last: +inf
};

struct PositionSpec {
  std::string name;    // "top left"
  std::string phrase;  // "at the top left"
  int row = 0, col = 0;
};

struct WorldSpec {
  std::vector<NamedColor> colors;                   // spec order
  std::map<std::string, std::string> color_aliases;  // "grey" -> "gray"
  std::vector<ShapeSpec> shapes;                    // shape_order
  std::vector<SizeSpec> sizes;                      // size_order, increasing
  std::vector<PositionSpec> positions;
  std::vector<std::string> background_colors;
  std::vector<std::string> textures;                // "plain" first
  std::map<std::string, std::string> texture_words; // texture -> caption word ("" for plain)
  // Video object phrases after the article, spec caption_grammar.video.motions in spec order, as
  // {motion name, template}: a bare motion phrase ("moving up") becomes "{size} {color} {shape} moving up";
  // a full template keeps its slots ("{color} {shape} growing from {size0} to {size1}"). Empty when the
  // spec has no video grammar.
  std::vector<std::pair<std::string, std::string>> motion_templates;
  double texture_contrast = 0;  // texture colour = lerp(bg, white or black, texture_contrast)
  double min_color_distance = 0;  // RGB distance an object keeps from its background

  // Index into colors/shapes/sizes, or -1.
  int color_index(const std::string& name) const;
  int shape_index(const std::string& name) const;
  const PositionSpec* position_at(int row, int col) const;
  // The texture colour drawn over a background of colour rgb (spec texture_rule).
  cv::Vec3d texture_color(const cv::Vec3d& rgb) const;
  std::string size_of_diameter(double d) const;
};

// Reads and validates spec.json; errors name the file and the key.
rt::Result<WorldSpec> load_world_spec(const std::string& path);

}  // namespace app::eval
