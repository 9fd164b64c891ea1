// The Flux text-to-image pipeline as diffusers' FluxPipeline runs it: tokenize, encode (CLIP pooled
// + T5 sequence), initial noise from the seed, flow-matching loop, unpack, unscale, VAE decode.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/pipeline/model_paths.h"
#include "dit/flux/attention_policy.h"
#include "dit/flux/config.h"
#include "context.h"

namespace app {

struct BatchImage;          // batch_generate.h
class TextEmbeddingCache;  // batch_generate.h

// Zero / negative / unset fields take the model's defaults (ModelDefaults).
struct GenerateParams {
  std::string prompt;
  // True CFG (diffusers' true_cfg_scale with a negative_prompt that is not None) runs when the
  // negative prompt is set, even to "", and true_cfg > 1.
  std::optional<std::string> negative_prompt;
  std::optional<float> true_cfg;  // 1 = off
  int64_t width = 0, height = 0;
  int steps = 0;
  float guidance = -1.f;        // embedded guidance (ignored by models without guidance_in)
  uint64_t seed = 42;
  int max_sequence_length = 0;
  int64_t vae_tile = 0;  // > 0: decode in overlapping tiles of this many pixels (vae/flux/tiled_decode.h)
  bool cuda_graph = true;  // GPU: replay the denoising step as a CUDA graph (DenoiseOptions::cuda_graph)
  dit::flux::AttentionPolicy attention;  // the transformer's attention method per step and layer (dense by default)

  // Whether generate runs true CFG with these (effective) values.
  bool runs_true_cfg() const { return negative_prompt.has_value() && true_cfg.value_or(1.f) > 1.f; }
};

// What a model generates with when the user does not say: Flux's (1024², 28 steps and T5 length 512
// with guidance embedding (dev), 4 steps and 256 without (schnell), guidance 3.5, no true CFG),
// overridden by a ditrun_defaults.json in the model folder (the embedded model ships one).
struct ModelDefaults {
  int64_t width = 1024, height = 1024;
  int steps = 28;
  int max_sequence_length = 512;
  float guidance = 3.5f;
  float true_cfg = 1.f;
  std::optional<std::string> negative_prompt;
};

struct LoadOptions {
  // Keep only the component in use on the device: load() checks every component but places none;
  // generate() loads the text encoders, encodes, frees them, then the transformer, then the VAE. Peak
  // memory is the largest component plus its activations; each generate() call reloads all three.
  bool offload = false;
};

// One component placed on the device.
struct ComponentLoad {
  std::string name;  // "transformer", "vae", "t5_encoder", "clip_text_encoder"
  int64_t params = 0;
  size_t bytes = 0;  // as placed: the context's dtype
  rt::DType dtype = rt::DType::F32;
  rt::Device device;
  double seconds = 0;  // opening the file, mapping names and placing, until the device is done
  size_t read_bytes = 0;      // checkpoint bytes read, in their stored dtype
  double host_seconds = 0;    // part of `seconds`: reading and converting on the host
  double wait_seconds = 0;    // part of `seconds`: waiting for host-to-device copies to free staging memory
};

// One line for people: "loaded transformer: 11.90 B params, 23.80 GB bf16 on cuda:0 in 1.20 s, ..."
std::string describe_load(const ComponentLoad& c);

struct LoadReport {
  std::vector<ComponentLoad> components;  // in load order; empty with offload (generate() loads them)
  double seconds = 0;                     // the whole of load(): components, tokenizers, configs, checks
};

// stage is "encode", "denoise" or "decode"; i of n done.
using ProgressFn = std::function<void(const char* stage, int i, int n)>;
// Called after each component generate() loads (with offload).
using LoadFn = std::function<void(const ComponentLoad&)>;

class FluxPipeline {
 public:
  static rt::Result<std::shared_ptr<FluxPipeline>> load(const rt::Context& ctx, const ComponentPaths& paths,
                                                        const LoadOptions& options = {});
  ~FluxPipeline();

  bool has_guidance() const;
  const ModelDefaults& defaults() const;
  // p with every unset field replaced by the model's default.
  GenerateParams with_defaults(GenerateParams p) const;
  std::string describe() const;  // one line: variant and dimensions
  const dit::flux::Config& transformer_config() const;  // heads, head dim, layer counts
  const LoadReport& load_report() const;
  bool offload() const;

  // The decoded image [3, H, W] in the decoder's range (about [-1, 1]).
  // With offload, each component is loaded here (reported through on_load) and freed after its stage.
  rt::Result<rt::Tensor> generate(const rt::Context& ctx, const GenerateParams& p, const ProgressFn& progress,
                                  const LoadFn& on_load = {}) const;

  // One decoded image [3, H, W] per entry of `images`, each with p's settings and the entry's prompt and
  // seed (p.prompt and p.seed are not read), in one batched pass: the texts `cache` lacks are encoded
  // together (then kept there; cache may be null), the transformer runs every step on all B latents,
  // the VAE decodes them. Each image equals generate()'s for its prompt and seed within float rounding.
  // A device out-of-memory throws rt::OutOfMemory (the caller may retry with fewer images).
  rt::Result<std::vector<rt::Tensor>> generate_batch(const rt::Context& ctx, const GenerateParams& p,
                                                     const std::vector<BatchImage>& images, TextEmbeddingCache* cache,
                                                     const ProgressFn& progress, const LoadFn& on_load = {}) const;

  struct Impl;  // the loaded components (flux_pipeline.cpp)

 private:
  std::unique_ptr<Impl> impl_;
  FluxPipeline();
};

}  // namespace app
