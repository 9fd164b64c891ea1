// Image analysis for the procedural shapes world: from a rendered (or generated) RGB image to the
// background colour/texture and a list of objects with colour, shape, size and position, plus the raw
// measurements behind each decision so a wrong call can be debugged from the --verbose/--json output.
// Deterministic: no randomness, no learned parts; every threshold is a named constant in analyze.cpp.
#pragma once
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "app/evaluate/world_spec.h"

namespace app::eval {

// The measurements that drive the shape rules (see classify_shape in analyze.cpp). Areas and lengths
// are in pixels, measured on the object's mask at 50% coverage (closer to the object's colour than to
// the background's), which is where the renderer's true edge lies even after a symmetric blur.
struct ShapeFeatures {
  double area = 0;            // object pixels (holes excluded)
  double outer_area = 0;      // pixels enclosed by the outer contour (holes included)
  double hole_ratio = 0;      // 1 - area / outer_area: 0.25 for the ring, ~0 otherwise
  double enclosing_fill = 0;  // outer_area / minEnclosingCircle area: circle 1, square 0.64, star 0.42, triangle 0.41
  double solidity = 0;        // contour area / convex hull area: 1 convex, cross 0.71, star 0.56
  double circularity = 0;     // 4*pi*A/P^2 (reported; pixel perimeters make it unreliable for small shapes)
  double extent = 0;          // contour area / minAreaRect area: square 1, circle 0.79, triangle 0.5
  double enclosing_radius = 0;  // pixels, half a pixel added for the contour running through pixel centres
  int vertices = 0;           // approxPolyDP(epsilon = 2% of the perimeter) vertex count
  int deep_defects = 0;       // convexity defects deeper than 8% of the enclosing diameter: star 5, cross 4
  // k-fold symmetry of the outline: |k-th Fourier coefficient| / mean of the radius r(theta) about the
  // centroid. A star's 5 points and a cross's 4 arms survive blur that shallows their convexity defects.
  double harmonic4 = 0, harmonic5 = 0;
  // Arguments (radians, image axes: x right, y down) of the 3rd/4th/5th coefficients: the outline's
  // orientation modulo 360/k degrees is phase_k / k. Videos track spin with them (app/evaluate/video.h).
  double harmonic3 = 0, phase3 = 0, phase4 = 0, phase5 = 0;
};

struct DetectedObject {
  std::string color;        // nearest spec colour name
  std::string shape;        // spec shape name, or "unknown"
  std::string size;         // spec size name
  std::string position;     // spec position name (3x3 cell)
  cv::Vec3d rgb;            // robust (median of the eroded interior) colour, 0..255
  double color_distance = 0;  // Lab distance to the chosen spec colour
  double diameter = 0;      // d (spec size_definition) / image side, from the area at the detected shape
  double cx = 0, cy = 0;    // centroid, fractions of width/height
  ShapeFeatures f;
};

struct Analysis {
  std::string background;          // nearest spec colour name
  std::string texture;             // plain / striped / dotted (best effort, see estimate_texture)
  double texture_share = 0;        // background pixels nearer the texture colour: dotted ~0.2, striped ~0.5
  cv::Vec3d background_rgb;
  double background_distance = 0;  // Lab distance to the chosen spec colour
  std::vector<DetectedObject> objects;  // largest first
  int width = 0, height = 0;
};

// `rgb` is CV_8UC3 in RGB order (convert cv::imread's BGR first), any size.
Analysis analyze_image(const cv::Mat& rgb, const WorldSpec& spec);

// Loads a PNG/JPEG as RGB; an error names the file.
rt::Result<cv::Mat> load_rgb(const std::string& path);

}  // namespace app::eval
