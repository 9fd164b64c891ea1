// The Flux text-to-image pipeline as diffusers' FluxPipeline runs it: tokenize, encode (CLIP pooled
// + T5 sequence), initial noise from the seed, flow-matching loop, unpack, unscale, VAE decode.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "app/pipeline/model_paths.h"
#include "context.h"

namespace app {

// Zero / negative fields take the model's defaults (ModelDefaults).
struct GenerateParams {
  std::string prompt;
  std::string negative_prompt;  // used with true_cfg > 1
  float true_cfg = 1.f;
  int64_t width = 0, height = 0;
  int steps = 0;
  float guidance = -1.f;        // embedded guidance (ignored by models without guidance_in)
  uint64_t seed = 42;
  int max_sequence_length = 0;
  int64_t vae_tile = 0;  // > 0: decode in overlapping tiles of this many pixels (vae/flux/tiled_decode.h)
};

// What a model generates with when the user does not say: Flux's (1024², 28 steps and T5 length 512
// with guidance embedding (dev), 4 steps and 256 without (schnell), guidance 3.5), overridden by a
// ditrun_defaults.json in the model folder (the embedded model ships one).
struct ModelDefaults {
  int64_t width = 1024, height = 1024;
  int steps = 28;
  int max_sequence_length = 512;
  float guidance = 3.5f;
};

// stage is "encode", "denoise" or "decode"; i of n done.
using ProgressFn = std::function<void(const char* stage, int i, int n)>;

class FluxPipeline {
 public:
  static rt::Result<std::shared_ptr<FluxPipeline>> load(const rt::Context& ctx, const ComponentPaths& paths);
  ~FluxPipeline();

  bool has_guidance() const;
  const ModelDefaults& defaults() const;
  // p with every unset field replaced by the model's default.
  GenerateParams with_defaults(GenerateParams p) const;
  std::string describe() const;  // one line: variant and dimensions

  // The decoded image [3, H, W] in the decoder's range (about [-1, 1]).
  rt::Result<rt::Tensor> generate(const rt::Context& ctx, const GenerateParams& p, const ProgressFn& progress) const;

  struct Impl;  // the loaded components (flux_pipeline.cpp)

 private:
  std::unique_ptr<Impl> impl_;
  FluxPipeline();
};

}  // namespace app
