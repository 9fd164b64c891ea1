#include "app/evaluate/video.h"

#include <algorithm>
#include <cmath>

namespace app::eval {

namespace {

constexpr double kColorWeight = 0.1;   // colour term of the tracking cost, at the largest RGB distance
constexpr double kMaxStep = 0.15;      // largest centroid step per frame (world videos: 0.3 over the video)
constexpr double kMinTravel = 0.1;     // world videos travel 0.3 of the image side
constexpr double kGrowRatio = 1.5;     // area ratio; world grow/shrink is small <-> large, a ratio of ~6.4
constexpr double kMinSpinDeg = 30;     // world spins turn 90 degrees

int symmetry_of(const std::string& shape) {
  if (shape == "triangle") return 3;
  if (shape == "square" || shape == "cross") return 4;
  if (shape == "star") return 5;
  return 0;  // circle, ring, unknown: no orientation
}

double orientation_deg(const ShapeFeatures& f, int k) {
  const double phase = k == 3 ? f.phase3 : k == 4 ? f.phase4 : f.phase5;
  return phase / k * 180 / CV_PI;
}

std::vector<Track> track_objects(const std::vector<Analysis>& frames) {
  std::vector<Track> tracks;
  if (frames.empty()) return tracks;
  const size_t n = frames[0].objects.size();
  tracks.resize(n);
  std::vector<const DetectedObject*> last(n);
  std::vector<int> last_frame(n, 0);
  for (size_t t = 0; t < n; ++t) {
    tracks[t].det.assign(frames.size(), -1);
    tracks[t].det[0] = int(t);
    last[t] = &frames[0].objects[t];
  }
  for (size_t f = 1; f < frames.size(); ++f) {
    struct Pair {
      double cost;
      size_t t, d;
    };
    std::vector<Pair> pairs;
    const auto& objs = frames[f].objects;
    for (size_t t = 0; t < n; ++t)
      for (size_t d = 0; d < objs.size(); ++d) {
        const double step = std::hypot(objs[d].cx - last[t]->cx, objs[d].cy - last[t]->cy);
        if (step > kMaxStep * double(f - size_t(last_frame[t]))) continue;
        pairs.push_back({step + kColorWeight * cv::norm(objs[d].rgb - last[t]->rgb) / 441.7, t, d});
      }
    std::sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) { return a.cost < b.cost; });
    std::vector<bool> t_used(n, false), d_used(objs.size(), false);
    for (const Pair& p : pairs) {
      if (t_used[p.t] || d_used[p.d]) continue;
      t_used[p.t] = d_used[p.d] = true;
      tracks[p.t].det[f] = int(p.d);
      last[p.t] = &objs[p.d];
      last_frame[p.t] = int(f);
    }
  }
  return tracks;
}

MotionMeasure measure_motion(const Track& tr, const std::vector<Analysis>& frames) {
  MotionMeasure m;
  std::vector<const DetectedObject*> seen;
  for (size_t f = 0; f < frames.size(); ++f)
    if (tr.det[f] >= 0) seen.push_back(&frames[f].objects[size_t(tr.det[f])]);
  m.frames_seen = int(seen.size());
  if (seen.empty()) return m;
  const DetectedObject &a = *seen.front(), &b = *seen.back();
  m.dx = b.cx - a.cx, m.dy = b.cy - a.cy;
  m.area_ratio = a.f.outer_area > 0 ? b.f.outer_area / a.f.outer_area : 1;
  m.first_color = a.color, m.last_color = b.color, m.first_size = a.size, m.last_size = b.size;
  m.symmetry = symmetry_of(a.shape);
  if (m.symmetry) {
    const double period = 360.0 / m.symmetry;
    for (size_t i = 1; i < seen.size(); ++i) {
      double step = orientation_deg(seen[i]->f, m.symmetry) - orientation_deg(seen[i - 1]->f, m.symmetry);
      step -= period * std::round(step / period);
      m.rotation_deg += step;
    }
  }
  if (std::max(std::abs(m.dx), std::abs(m.dy)) >= kMinTravel)
    m.label = std::abs(m.dx) >= std::abs(m.dy) ? (m.dx > 0 ? "move_right" : "move_left") : (m.dy > 0 ? "move_down" : "move_up");
  else if (m.area_ratio >= kGrowRatio)
    m.label = "grow to " + m.last_size;
  else if (m.area_ratio <= 1 / kGrowRatio)
    m.label = "shrink to " + m.last_size;
  else if (m.first_color != m.last_color)
    m.label = "recolor to " + m.last_color;
  else if (std::abs(m.rotation_deg) >= kMinSpinDeg)
    m.label = "spin";
  else
    m.label = "still";
  return m;
}

// Agreement of an expected object with a track (motion counts double: it is what the prompt is about).
int agreement(const ExpectedObject& e, const DetectedObject& d, const MotionMeasure& m) {
  return (e.color == d.color) + (e.shape == d.shape) + (e.size == d.size) + 2 * (expected_motion_label(e) == m.label);
}

}  // namespace

std::string expected_motion_label(const ExpectedObject& e) {
  if (e.motion == "grow" || e.motion == "shrink") return e.motion + " to " + e.end_size;
  if (e.motion == "recolor") return e.motion + " to " + e.end_color;
  return e.motion;
}

VideoAnalysis analyze_video(const std::vector<cv::Mat>& rgb_frames, const WorldSpec& spec) {
  VideoAnalysis v;
  for (const cv::Mat& f : rgb_frames) v.frames.push_back(analyze_image(f, spec));
  v.tracks = track_objects(v.frames);
  for (const Track& t : v.tracks) v.motions.push_back(measure_motion(t, v.frames));
  return v;
}

ImageScore score_video(const ExpectedScene& e, const VideoAnalysis& v, const WorldSpec& spec) {
  (void)spec;
  ImageScore s;
  auto add = [&](const std::string& attr, const std::string& exp, const std::string& got, int obj) {
    s.results.push_back({attr, exp, got, exp == got, obj});
  };
  DITRUN_CHECK(!v.frames.empty(), "score_video without frames");
  const Analysis& first = v.frames[0];
  add("background", e.background, first.background, -1);
  add("texture", e.texture, first.texture, -1);
  add("count", std::to_string(e.objects.size()), std::to_string(first.objects.size()), -1);

  // Matching, as score_image: one expected object is the largest track; more try every assignment over
  // the largest few tracks (leaving one out only when tracks run out), most agreement first.
  const size_t ne = e.objects.size(), nc = std::min(v.tracks.size(), ne + 2);
  s.match.assign(ne, -1);
  if (ne == 1 && nc > 0) {
    s.match[0] = 0;
  } else if (ne > 1 && nc > 0) {
    std::vector<int> cur(ne, -1);
    std::vector<bool> used(nc, false);
    int best = -1;
    auto run = [&](auto&& self, size_t i, int agree) -> void {
      if (i == ne) {
        if (agree > best) best = agree, s.match = cur;
        return;
      }
      for (size_t j = 0; j < nc; ++j) {
        if (used[j]) continue;
        used[j] = true, cur[i] = int(j);
        self(self, i + 1, agree + agreement(e.objects[i], first.objects[j], v.motions[j]));
        used[j] = false;
      }
      cur[i] = -1;
      if (nc < ne) self(self, i + 1, agree);
    };
    run(run, 0, 0);
  }
  for (size_t i = 0; i < ne; ++i) {
    const ExpectedObject& x = e.objects[i];
    const int j = s.match[i];
    const DetectedObject* d = j >= 0 ? &first.objects[size_t(j)] : nullptr;
    add("color", x.color, d ? d->color : "-", int(i));
    add("shape", x.shape, d ? d->shape : "-", int(i));
    add("size", x.size, d ? d->size : "-", int(i));
    add("motion", expected_motion_label(x), d ? v.motions[size_t(j)].label : "-", int(i));
  }
  return s;
}

}  // namespace app::eval
