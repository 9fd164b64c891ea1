// What `ditrun compare` measures of one method's image against full attention's: PSNR, SSIM (OpenCV
// builds), the shapes-world evaluator's per-attribute results (OpenCV builds, prompts in its grammar), and
// the method's block-layout densities over the model's token grid.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sparse_attention/methods/method_spec.h"

namespace app::compare {

// 8-bit RGB, HWC.
struct Rgb8 {
  std::vector<uint8_t> px;
  int w = 0, h = 0;
};

// PSNR in dB with peak 255; +infinity when the images are equal.
double psnr(const Rgb8& a, const Rgb8& b);

// Mean over channels of the Gaussian-window SSIM (11x11, sigma 1.5, C1 = (0.01*255)², C2 = (0.03*255)²);
// nullopt in builds without OpenCV.
std::optional<double> ssim(const Rgb8& a, const Rgb8& b);

// The evaluator's results for `img` against `prompt`: [{attribute, object, expected, detected, correct}];
// null when the build has no OpenCV, the world spec cannot be read or the prompt is not a still-image
// caption of the shapes world. `why` (when not null) says which.
nlohmann::ordered_json evaluate(const std::string& prompt, const Rgb8& img, std::string* why);

struct Densities {
  double tile = 1, flop = 1;
};

// Densities of `method` over Flux's joint sequence for a width x height image: text_len T5 tokens, then
// the (height/16) x (width/16) grid, planned with the block-sparse kernel's tiles. Dense: 1 and 1. PARO:
// the mean over its plan's (timestep bucket, layer) layouts.
Densities densities(const sattn::MethodSpec& method, int64_t width, int64_t height, int64_t text_len);

}  // namespace app::compare
