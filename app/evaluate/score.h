// Scoring one image: the expected scene (from the prompt) against what analyze_image found.
// Attributes, each correct or not: background (colour), texture, count (number of objects), and per
// expected object color, shape, size, position. Object attributes are pooled over objects, so a
// two-object prompt contributes two color checks.
//
// Matching: with one expected object the largest detected component is it (a generated image's stray
// blobs do not get to choose). With more, every assignment of expected objects to detected ones (or to
// none) is tried and the one agreeing on the most attributes wins (position counts double: it is what
// tells two same-looking objects apart); ties go to the smaller centroid-to-cell-centre distance. An
// expected object left without a detection is wrong on all its attributes.
//
// Videos: score_video (app/evaluate/video.h) fills the same ImageScore from tracked per-frame analyses,
// with the attribute motion per object and no position (video prompts have none). An image object with
// an empty position (never from parse_caption) is not scored on position either.
#pragma once
#include <string>
#include <vector>

#include "app/evaluate/analyze.h"
#include "app/evaluate/caption.h"

namespace app::eval {

struct AttributeResult {
  std::string attribute;  // one of attribute_names()
  std::string expected, detected;
  bool correct = false;
  int object = -1;        // index of the expected object, -1 for scene attributes
};

struct ImageScore {
  std::vector<AttributeResult> results;
  std::vector<int> match;  // per expected object: index into Analysis::objects, or -1
};

// Scene attributes first, then object attributes: background, texture, count, color, shape, size, position,
// motion (videos only; a Tally over images has motion.total == 0).
const std::vector<std::string>& attribute_names();

ImageScore score_image(const ExpectedScene& expected, const Analysis& detected, const WorldSpec& spec);

// Correct/total per attribute over many images.
struct Tally {
  std::vector<int> correct, total;  // indexed like attribute_names()
  Tally();
  void add(const ImageScore& s);
  double accuracy(size_t attribute) const { return total[attribute] ? double(correct[attribute]) / total[attribute] : 0; }
};

}  // namespace app::eval
