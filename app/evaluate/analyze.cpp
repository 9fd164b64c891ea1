// How an image is read (the steps of analyze_image):
//  1. Median 3x3 filter: removes per-pixel noise and leaves flat regions and straight edges unchanged.
//  2. Background: every spec colour c is tried as the model {c, texture_color(c)}; the one whose colour
//     segment lies closest (Lab, median over the outer border strip, which objects never touch) wins.
//     Fitting the pair, not taking the border's majority colour, matters: a striped border is half
//     texture colour, and yellow's texture colour is as close to orange as to yellow.
//  3. Foreground: RGB distance of each pixel to the segment [bg, texture colour] (renders blend colours
//     linearly in RGB, so anti-aliased stripe edges lie on that segment), thresholded at half the
//     smallest distance a legal object colour keeps from it.
//  4. Per connected component: the object's colour is the median of its eroded interior (no anti-aliased
//     edge pixels); its mask is then redrawn at 50% coverage (closer to the object colour than to the
//     background segment) and measured: contour, holes, hull, defects, enclosing circle.
//  5. Shape rules (classify_shape), in order: a hole of > 8% of the outline's area -> ring; concave
//     (solidity < 0.85 or >= 3 deep convexity defects) -> star if the outline's 5-fold harmonic beats its
//     4-fold one, else cross; convex -> by the share of the enclosing circle filled: > 0.82 circle,
//     > 0.58 square, else triangle. Size: d = sqrt(area / the shape's area at d = 1) against the spec's
//     thresholds. Position: the centroid of the filled outline (hole included) -> 3x3 cell.
#include "app/evaluate/analyze.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace app::eval {

namespace {

constexpr double kBorderFraction = 0.008;     // border strip width (at least 2 px); objects keep 1% away
constexpr double kMinComponentFraction = 0.002;  // smaller blobs are noise (a small star is ~0.6%)
constexpr double kMinThreshold = 20, kMaxThreshold = 60;  // foreground threshold bounds, RGB units
constexpr double kRingHoleRatio = 0.08;       // ring: 0.25 of its outer disc is hole
constexpr double kConcaveSolidity = 0.85;     // convex shapes ~1, cross 0.71, star 0.56
constexpr double kDefectDepth = 0.08;         // of the enclosing diameter: star 0.18, cross 0.22
constexpr double kCircleFill = 0.82;          // enclosing_fill midpoint circle (1) / square (0.64)
constexpr double kSquareFill = 0.58;  // square 0.64-0.70 / triangle 0.41-0.52 (blur raises it: tips round off)
// Texture pixel share: plain 0 (<0.04 at noise sd 25), dotted 0.2 (>0.047 at blur sigma 2.5), striped 0.5 (>0.41).
constexpr double kPlainTexture = 0.04, kDottedTexture = 0.33;

cv::Vec3d lab_of(const cv::Vec3d& rgb) {
  cv::Mat m(1, 1, CV_32FC3, cv::Scalar(rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0));
  cv::cvtColor(m, m, cv::COLOR_RGB2Lab);
  const cv::Vec3f v = m.at<cv::Vec3f>(0, 0);
  return {v[0], v[1], v[2]};
}

// Distance from p to the segment [a, b]; *t receives the projection parameter in [0, 1].
double segment_distance(const cv::Vec3d& p, const cv::Vec3d& a, const cv::Vec3d& b, double* t = nullptr) {
  const cv::Vec3d e = b - a;
  const double ee = e.dot(e);
  const double s = ee > 0 ? std::clamp((p - a).dot(e) / ee, 0.0, 1.0) : 0.0;
  if (t) *t = s;
  return cv::norm(p - (a + s * e));
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  auto mid = v.begin() + v.size() / 2;
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

cv::Vec3d median_rgb(const std::vector<cv::Vec3d>& px) {
  cv::Vec3d m;
  for (int k = 0; k < 3; ++k) {
    std::vector<double> ch(px.size());
    for (size_t i = 0; i < px.size(); ++i) ch[i] = px[i][k];
    m[k] = median(std::move(ch));
  }
  return m;
}

// Nearest spec colour in Lab: (index, distance).
std::pair<int, double> nearest_color(const cv::Vec3d& rgb, const WorldSpec& spec) {
  const cv::Vec3d lab = lab_of(rgb);
  int best = 0;
  double bd = 1e30;
  for (size_t i = 0; i < spec.colors.size(); ++i)
    if (const double d = cv::norm(lab - lab_of(spec.colors[i].rgb)); d < bd) bd = d, best = int(i);
  return {best, bd};
}

struct BackgroundFit {
  int color = 0;
  double cost = 0;        // median Lab distance of the border to the model
  cv::Vec3d base, tex;    // measured base colour and its texture colour, RGB
};

BackgroundFit fit_background(const cv::Mat& rgb, const WorldSpec& spec) {
  const int bw = std::max(2, int(std::lround(kBorderFraction * std::min(rgb.cols, rgb.rows))));
  std::vector<cv::Vec3d> px;
  for (int y = 0; y < rgb.rows; ++y)
    for (int x = 0; x < rgb.cols; ++x)
      if (y < bw || y >= rgb.rows - bw || x < bw || x >= rgb.cols - bw) px.push_back(rgb.at<cv::Vec3b>(y, x));
  std::vector<cv::Vec3d> lab(px.size());
  {
    cv::Mat m(1, int(px.size()), CV_32FC3);
    for (size_t i = 0; i < px.size(); ++i) m.at<cv::Vec3f>(0, int(i)) = cv::Vec3f(px[i] / 255.0);
    cv::cvtColor(m, m, cv::COLOR_RGB2Lab);
    for (size_t i = 0; i < px.size(); ++i) lab[i] = m.at<cv::Vec3f>(0, int(i));
  }
  BackgroundFit fit;
  fit.cost = 1e30;
  for (size_t c = 0; c < spec.colors.size(); ++c) {
    const cv::Vec3d a = lab_of(spec.colors[c].rgb), b = lab_of(spec.texture_color(spec.colors[c].rgb));
    std::vector<double> d(lab.size());
    for (size_t i = 0; i < lab.size(); ++i) d[i] = segment_distance(lab[i], a, b);
    if (const double cost = median(std::move(d)); cost < fit.cost) fit.cost = cost, fit.color = int(c);
  }
  // The measured base colour: border pixels on the base half of the fitted segment.
  const cv::Vec3d a = spec.colors[fit.color].rgb, b = spec.texture_color(a);
  std::vector<cv::Vec3d> base;
  for (const cv::Vec3d& p : px) {
    double t;
    segment_distance(p, a, b, &t);
    if (t < 0.5) base.push_back(p);
  }
  fit.base = base.empty() ? a : median_rgb(base);
  // The spec's texture offset moved onto the measured base. Recomputing the lerp from the measured colour
  // would flip its direction for gray (luma 128 sits on the white/black boundary) under a little noise.
  fit.tex = fit.base + (b - a);
  return fit;
}

// Half the smallest RGB distance that an object colour allowed on this background keeps from the
// background's colour segment: pixels at least half-covered by any legal object pass it.
double foreground_threshold(int bg, const WorldSpec& spec) {
  const cv::Vec3d a = spec.colors[bg].rgb, b = spec.texture_color(a);
  double m = 1e30;
  for (const NamedColor& o : spec.colors)
    if (cv::norm(o.rgb - a) >= spec.min_color_distance) m = std::min(m, segment_distance(o.rgb, a, b));
  return std::clamp(m / 2, kMinThreshold, kMaxThreshold);
}

// Radius of the outline about c, binned by angle (the farthest point per bin; empty bins take the previous
// bin's value), then the magnitude of the k-th angular Fourier coefficient over the mean radius.
void radial_harmonics(const std::vector<cv::Point>& outline, cv::Point2d c, ShapeFeatures& f) {
  constexpr int kBins = 180;
  std::vector<double> r(kBins, -1);
  for (const cv::Point& p : outline) {
    const double a = std::atan2(p.y - c.y, p.x - c.x);
    const int b = std::clamp(int((a + CV_PI) / (2 * CV_PI) * kBins), 0, kBins - 1);
    r[b] = std::max(r[b], std::hypot(p.x - c.x, p.y - c.y));
  }
  double last = *std::max_element(r.begin(), r.end());
  for (int b = 0; b < 2 * kBins; ++b) {  // two passes so the leading empty bins wrap around
    double& v = r[b % kBins];
    if (v < 0 && b >= kBins) v = last;
    if (v >= 0) last = v;
  }
  double mean = 0;
  for (double v : r) mean += v;
  auto harmonic = [&](int k, double* phase) {
    double re = 0, im = 0;
    for (int b = 0; b < kBins; ++b) {
      const double a = 2 * CV_PI * (b + 0.5) / kBins - CV_PI;  // bin b starts at angle -pi (see above)
      re += r[b] * std::cos(k * a), im += r[b] * std::sin(k * a);
    }
    *phase = std::atan2(im, re);
    return mean > 0 ? std::hypot(re, im) / mean : 0;
  };
  f.harmonic3 = harmonic(3, &f.phase3);
  f.harmonic4 = harmonic(4, &f.phase4);
  f.harmonic5 = harmonic(5, &f.phase5);
}

std::string classify_shape(const ShapeFeatures& f) {
  if (f.hole_ratio > kRingHoleRatio) return "ring";
  if (f.solidity < kConcaveSolidity || f.deep_defects >= 3) return f.harmonic5 > f.harmonic4 ? "star" : "cross";
  if (f.enclosing_fill > kCircleFill) return "circle";
  return f.enclosing_fill > kSquareFill ? "square" : "triangle";
}

ShapeFeatures measure(const std::vector<cv::Point>& outer, const cv::Mat& filled, const cv::Mat& mask) {
  ShapeFeatures f;
  f.area = cv::countNonZero(mask);
  f.outer_area = cv::countNonZero(filled);
  f.hole_ratio = f.outer_area > 0 ? 1.0 - f.area / f.outer_area : 0;
  cv::Point2f centre;
  float r;
  cv::minEnclosingCircle(outer, centre, r);
  f.enclosing_radius = r + 0.5;
  f.enclosing_fill = f.outer_area / (CV_PI * f.enclosing_radius * f.enclosing_radius);
  const double a = cv::contourArea(outer), p = cv::arcLength(outer, true);
  f.circularity = p > 0 ? 4 * CV_PI * a / (p * p) : 0;
  std::vector<cv::Point> hull;
  cv::convexHull(outer, hull);
  const double ha = cv::contourArea(hull);
  f.solidity = ha > 0 ? a / ha : 0;
  const cv::RotatedRect rr = cv::minAreaRect(outer);
  f.extent = rr.size.area() > 0 ? a / rr.size.area() : 0;
  std::vector<cv::Point> approx;
  cv::approxPolyDP(outer, approx, 0.02 * p, true);
  f.vertices = int(approx.size());
  std::vector<int> hull_idx;
  cv::convexHull(outer, hull_idx, false, false);
  if (hull_idx.size() >= 3 && outer.size() > 3) {
    std::vector<cv::Vec4i> defects;
    try {
      cv::convexityDefects(outer, hull_idx, defects);
    } catch (const cv::Exception&) {
      defects.clear();  // non-monotonous hull on a self-touching contour: the solidity rule decides
    }
    for (const cv::Vec4i& d : defects)
      if (d[3] / 256.0 > kDefectDepth * 2 * f.enclosing_radius) ++f.deep_defects;
  }
  const cv::Moments m = cv::moments(filled, true);
  if (m.m00 > 0) radial_harmonics(outer, {m.m10 / m.m00, m.m01 / m.m00}, f);
  return f;
}

}  // namespace

rt::Result<cv::Mat> load_rgb(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) return rt::Status::error("image " + path + ": no such file");
  cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  if (bgr.empty()) return rt::Status::error("image " + path + ": missing or not a readable PNG/JPEG");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

Analysis analyze_image(const cv::Mat& input, const WorldSpec& spec) {
  DITRUN_CHECK(input.type() == CV_8UC3 && !input.empty(), "analyze_image wants a non-empty 8-bit RGB image");
  Analysis out;
  out.width = input.cols, out.height = input.rows;
  const double side = 0.5 * (input.cols + input.rows);
  cv::Mat img;
  cv::medianBlur(input, img, 3);

  const BackgroundFit bg = fit_background(img, spec);
  out.background = spec.colors[bg.color].name;
  out.background_rgb = bg.base;
  out.background_distance = nearest_color(bg.base, spec).second;

  // Distance to the background segment and position along it, per pixel.
  cv::Mat dist(img.size(), CV_32F), along(img.size(), CV_32F);
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) {
      double t;
      dist.at<float>(y, x) = float(segment_distance(cv::Vec3d(img.at<cv::Vec3b>(y, x)), bg.base, bg.tex, &t));
      along.at<float>(y, x) = float(t);
    }
  cv::Mat coarse = dist > foreground_threshold(bg.color, spec);
  const cv::Mat k3 = cv::getStructuringElement(cv::MORPH_ELLIPSE, {3, 3});
  cv::morphologyEx(coarse, coarse, cv::MORPH_OPEN, k3);

  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(coarse, labels, stats, centroids, 8);
  const double min_area = kMinComponentFraction * img.cols * img.rows;
  for (int l = 1; l < n; ++l) {
    if (stats.at<int>(l, cv::CC_STAT_AREA) < min_area) continue;
    const int pad = 4;
    const cv::Rect box = cv::Rect(stats.at<int>(l, cv::CC_STAT_LEFT) - pad, stats.at<int>(l, cv::CC_STAT_TOP) - pad,
                                  stats.at<int>(l, cv::CC_STAT_WIDTH) + 2 * pad,
                                  stats.at<int>(l, cv::CC_STAT_HEIGHT) + 2 * pad) & cv::Rect(0, 0, img.cols, img.rows);
    const cv::Mat comp = labels(box) == l;

    // Object colour from the interior, away from anti-aliased edges.
    cv::Mat interior;
    for (int it = 2; it >= 0; --it) {
      cv::erode(comp, interior, k3, {-1, -1}, it);
      if (cv::countNonZero(interior) >= 10) break;
    }
    std::vector<cv::Vec3d> px;
    for (int y = 0; y < box.height; ++y)
      for (int x = 0; x < box.width; ++x)
        if (interior.at<uchar>(y, x)) px.push_back(img.at<cv::Vec3b>(box.y + y, box.x + x));
    DetectedObject o;
    o.rgb = median_rgb(px);
    const auto [ci, cd] = nearest_color(o.rgb, spec);
    o.color = spec.colors[ci].name;
    o.color_distance = cd;

    // The 50%-coverage mask near the component, then its largest connected piece.
    cv::Mat near, mask = cv::Mat::zeros(box.size(), CV_8U);
    cv::dilate(comp, near, k3, {-1, -1}, 2);
    for (int y = 0; y < box.height; ++y)
      for (int x = 0; x < box.width; ++x)
        if (near.at<uchar>(y, x)) {
          const cv::Vec3d p = img.at<cv::Vec3b>(box.y + y, box.x + x);
          if (cv::norm(p - o.rgb) < dist.at<float>(box.y + y, box.x + x)) mask.at<uchar>(y, x) = 255;
        }
    std::vector<std::vector<cv::Point>> contours;
    std::vector<cv::Vec4i> hierarchy;
    cv::findContours(mask.clone(), contours, hierarchy, cv::RETR_CCOMP, cv::CHAIN_APPROX_NONE);
    int outer = -1;
    double outer_a = 0;
    for (size_t i = 0; i < contours.size(); ++i)
      if (hierarchy[i][3] < 0 && cv::contourArea(contours[i]) >= outer_a) outer_a = cv::contourArea(contours[i]), outer = int(i);
    if (outer < 0) continue;
    cv::Mat filled = cv::Mat::zeros(box.size(), CV_8U);
    cv::drawContours(filled, contours, outer, 255, cv::FILLED);
    cv::Mat own;
    cv::bitwise_and(mask, filled, own);  // drops stray pieces outside the main outline
    o.f = measure(contours[outer], filled, own);
    if (o.f.outer_area < min_area) continue;
    o.shape = classify_shape(o.f);
    const int si = spec.shape_index(o.shape);
    o.diameter = std::sqrt(o.f.outer_area / (si >= 0 ? spec.shapes[si].unit_area : 1.0)) / side;
    o.size = spec.size_of_diameter(o.diameter);
    const cv::Moments m = cv::moments(filled, true);
    o.cx = (box.x + m.m10 / m.m00 + 0.5) / img.cols;
    o.cy = (box.y + m.m01 / m.m00 + 0.5) / img.rows;
    const PositionSpec* pos = spec.position_at(std::clamp(int(o.cy * 3), 0, 2), std::clamp(int(o.cx * 3), 0, 2));
    o.position = pos ? pos->name : "?";
    out.objects.push_back(o);
  }
  std::sort(out.objects.begin(), out.objects.end(),
            [](const DetectedObject& a, const DetectedObject& b) { return a.f.outer_area > b.f.outer_area; });

  // Texture: share of background pixels (away from objects) on the texture half of the segment.
  cv::Mat away;
  cv::dilate(coarse, away, cv::getStructuringElement(cv::MORPH_ELLIPSE, {7, 7}));
  double tex = 0, total = 0;
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x)
      if (!away.at<uchar>(y, x)) total += 1, tex += along.at<float>(y, x) > 0.5f;
  const double share = total > 0 ? tex / total : 0;
  out.texture_share = share;
  out.texture = share < kPlainTexture ? "plain" : share < kDottedTexture ? "dotted" : "striped";
  return out;
}

}  // namespace app::eval
