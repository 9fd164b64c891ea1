#include "app/evaluate/score.h"

#include <algorithm>
#include <cmath>

namespace app::eval {

const std::vector<std::string>& attribute_names() {
  static const std::vector<std::string> kNames = {"background", "texture", "count", "color",
                                                  "shape",      "size",    "position",  "motion"};
  return kNames;
}

namespace {

const PositionSpec* position_named(const std::string& name, const WorldSpec& spec) {
  for (const PositionSpec& p : spec.positions)
    if (p.name == name) return &p;
  return nullptr;
}

// Attribute agreement of one pairing; position weighs double (see score.h).
int agreement(const ExpectedObject& e, const DetectedObject& d) {
  return (e.color == d.color) + (e.shape == d.shape) + (e.size == d.size) + 2 * (e.position == d.position);
}

double cell_distance(const ExpectedObject& e, const DetectedObject& d, const WorldSpec& spec) {
  const PositionSpec* p = position_named(e.position, spec);
  if (!p) return 0;
  return std::hypot(d.cx - (p->col + 0.5) / 3.0, d.cy - (p->row + 0.5) / 3.0);
}

struct Search {
  const ExpectedScene& e;
  const Analysis& a;
  const WorldSpec& spec;
  size_t candidates;
  std::vector<int> cur, best;
  int best_agree = -1;
  double best_dist = 1e30;

  void run(size_t i, std::vector<bool>& used, int agree, double dist) {
    if (i == e.objects.size()) {
      if (agree > best_agree || (agree == best_agree && dist < best_dist)) best_agree = agree, best_dist = dist, best = cur;
      return;
    }
    for (size_t j = 0; j < candidates; ++j) {
      if (used[j]) continue;
      used[j] = true;
      cur[i] = int(j);
      run(i + 1, used, agree + agreement(e.objects[i], a.objects[j]),
          dist + cell_distance(e.objects[i], a.objects[j], spec));
      used[j] = false;
    }
    cur[i] = -1;  // left unmatched: only worth it when detections run out
    if (candidates < e.objects.size()) run(i + 1, used, agree, dist + 1.0);
  }
};

std::vector<int> match_objects(const ExpectedScene& e, const Analysis& a, const WorldSpec& spec) {
  std::vector<int> m(e.objects.size(), -1);
  if (e.objects.empty() || a.objects.empty()) return m;
  if (e.objects.size() == 1) return {0};  // objects are sorted largest first
  // Enough candidates for every expected object plus a couple of spares; more only adds noise blobs.
  Search s{e, a, spec, std::min(a.objects.size(), e.objects.size() + 2), std::vector<int>(e.objects.size(), -1), m};
  std::vector<bool> used(s.candidates, false);
  s.run(0, used, 0, 0);
  return s.best;
}

}  // namespace

ImageScore score_image(const ExpectedScene& e, const Analysis& a, const WorldSpec& spec) {
  ImageScore s;
  auto add = [&](const std::string& attr, const std::string& exp, const std::string& got, int obj) {
    s.results.push_back({attr, exp, got, exp == got, obj});
  };
  add("background", e.background, a.background, -1);
  add("texture", e.texture, a.texture, -1);
  add("count", std::to_string(e.objects.size()), std::to_string(a.objects.size()), -1);
  s.match = match_objects(e, a, spec);
  for (size_t i = 0; i < e.objects.size(); ++i) {
    const ExpectedObject& x = e.objects[i];
    const int j = s.match[i];
    const DetectedObject* d = j >= 0 ? &a.objects[size_t(j)] : nullptr;
    add("color", x.color, d ? d->color : "-", int(i));
    add("shape", x.shape, d ? d->shape : "-", int(i));
    add("size", x.size, d ? d->size : "-", int(i));
    if (!x.position.empty()) add("position", x.position, d ? d->position : "-", int(i));
  }
  return s;
}

Tally::Tally() : correct(attribute_names().size(), 0), total(attribute_names().size(), 0) {}

void Tally::add(const ImageScore& s) {
  const auto& names = attribute_names();
  for (const AttributeResult& r : s.results) {
    const size_t k = size_t(std::find(names.begin(), names.end(), r.attribute) - names.begin());
    DITRUN_CHECK(k < names.size(), "unknown attribute ", r.attribute);
    ++total[k];
    correct[k] += r.correct;
  }
}

}  // namespace app::eval
