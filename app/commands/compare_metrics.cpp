#include "app/commands/compare_metrics.h"

#include <cmath>

#if DITRUN_WITH_OPENCV
#include <opencv2/imgproc.hpp>

#include "app/evaluate/score.h"
#include "app/evaluate/world_spec.h"
#endif
#include "base/check.h"
#include "sparse_attention/kernels/sparse/block_sparse.h"
#include "dit/flux/attention_policy.h"
#include "sparse_attention/methods/paro.h"
#include "sparse_attention/methods/plan.h"
#include "sparse_attention/methods/topk.h"

namespace app::compare {

double psnr(const Rgb8& a, const Rgb8& b) {
  CHECK(a.px.size() == b.px.size(), "psnr of images of ", a.px.size(), " and ", b.px.size(), " bytes");
  double se = 0;
  for (size_t i = 0; i < a.px.size(); ++i) {
    const double d = double(a.px[i]) - double(b.px[i]);
    se += d * d;
  }
  const double mse = se / double(a.px.size());
  return mse == 0 ? INFINITY : 10.0 * std::log10(255.0 * 255.0 / mse);
}

#if DITRUN_WITH_OPENCV
static cv::Mat as_mat(const Rgb8& img) {
  return cv::Mat(img.h, img.w, CV_8UC3, const_cast<uint8_t*>(img.px.data()));
}

// One channel's mean SSIM; x and y are CV_64FC1.
static double ssim_channel(const cv::Mat& x, const cv::Mat& y) {
  const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);
  auto blur = [](const cv::Mat& m) {
    cv::Mat out;
    cv::GaussianBlur(m, out, cv::Size(11, 11), 1.5, 1.5, cv::BORDER_REFLECT);
    return out;
  };
  const cv::Mat mx = blur(x), my = blur(y);
  const cv::Mat mx2 = mx.mul(mx), my2 = my.mul(my), mxy = mx.mul(my);
  const cv::Mat sx2 = blur(x.mul(x)) - mx2, sy2 = blur(y.mul(y)) - my2, sxy = blur(x.mul(y)) - mxy;
  const cv::Mat num = (2 * mxy + c1).mul(2 * sxy + c2), den = (mx2 + my2 + c1).mul(sx2 + sy2 + c2);
  cv::Mat map;
  cv::divide(num, den, map);
  return cv::mean(map)[0];
}

std::optional<double> ssim(const Rgb8& a, const Rgb8& b) {
  CHECK(a.w == b.w && a.h == b.h, "ssim of ", a.w, "x", a.h, " and ", b.w, "x", b.h, " images");
  cv::Mat x, y;
  as_mat(a).convertTo(x, CV_64FC3);
  as_mat(b).convertTo(y, CV_64FC3);
  std::vector<cv::Mat> xs, ys;
  cv::split(x, xs);
  cv::split(y, ys);
  double sum = 0;
  for (int c = 0; c < 3; ++c) sum += ssim_channel(xs[c], ys[c]);
  return sum / 3.0;
}

nlohmann::ordered_json evaluate(const std::string& prompt, const Rgb8& img, std::string* why) {
  auto spec = eval::load_world_spec(DITRUN_WORLD_SPEC);
  if (!spec) {
    if (why) *why = spec.status().message();
    return nullptr;
  }
  auto scene = eval::parse_caption(prompt, *spec);
  if (!scene || scene->video) {
    if (why) *why = scene ? "a video caption" : scene.status().message();
    return nullptr;
  }
  const eval::Analysis analysis = eval::analyze_image(as_mat(img), *spec);
  const eval::ImageScore score = eval::score_image(*scene, analysis, *spec);
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& r : score.results)
    out.push_back({{"attribute", r.attribute}, {"object", r.object}, {"expected", r.expected},
                   {"detected", r.detected}, {"correct", r.correct}});
  return out;
}
#else
std::optional<double> ssim(const Rgb8&, const Rgb8&) { return std::nullopt; }

nlohmann::ordered_json evaluate(const std::string&, const Rgb8&, std::string* why) {
  if (why) *why = "built without OpenCV";
  return nullptr;
}
#endif

Densities densities(const sattn::MethodSpec& method, int64_t width, int64_t height, int64_t text_len) {
  if (method.is_dense()) return {};
  const sattn::TokenLayout tokens = dit::flux::joint_tokens(text_len, height / 16, width / 16);  // as the blocks see it
  if (method.is_dynamic()) {
    // Which tiles a dynamic method visits depends on q and k; how many does not: k of n per query tile
    // (every visited tile full; the short last key tile counted as a whole one).
    const int64_t n = (tokens.seq_len() + sattn::kernels::kBlockSparseKvTile - 1) / sattn::kernels::kBlockSparseKvTile;
    const double d = double(sattn::sla_critical_count(method.sla, n)) / double(n);
    return {d, d};
  }
  if (method.paro) {
    // The plan's layouts differ per (timestep bucket, layer): their mean. A plan for another size has none.
    const sattn::ParoMethod& paro = *method.paro;
    if (!sattn::paro_tokens_error(paro.plan(), tokens).empty()) return {};
    double tile = 0, flop = 0;
    for (int b = 0; b < paro.plan().buckets; ++b)
      for (int64_t l = 0; l < paro.plan().layers; ++l) {
        const auto layout = paro.layout(b, l, method.for_tokens(tokens));
        tile += layout->tile_density();
        flop += layout->flop_density();
      }
    const double n = double(paro.plan().buckets) * double(paro.plan().layers);
    return {tile / n, flop / n};
  }
  const sattn::BlockLayout layout =
      sattn::plan(method.for_tokens(tokens), sattn::kernels::kBlockSparseQTile, sattn::kernels::kBlockSparseKvTile);
  return {layout.tile_density(), layout.flop_density()};
}

}  // namespace app::compare
