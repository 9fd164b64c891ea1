// Flux transformer hyper-parameters (models.md §1.1). Variants are data: the presets below, a
// diffusers config.json, or the shapes of a checkpoint.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "weights/name_map.h"

namespace dit::flux {

struct Config {
  int64_t in_channels = 64;    // packed latent features (16 channels x 2x2)
  int64_t out_channels = 64;   // features of final_layer.linear (diffusers: patch_size² · out_channels)
  int64_t hidden_size = 3072;  // = num_heads · head_dim
  int64_t num_heads = 24;
  int64_t head_dim = 128;
  int64_t depth = 19;          // double-stream blocks
  int64_t depth_single = 38;   // single-stream blocks
  int64_t context_dim = 4096;  // T5 width (diffusers joint_attention_dim)
  int64_t pooled_dim = 768;    // CLIP pooled width (diffusers pooled_projection_dim)
  float mlp_ratio = 4.f;
  std::vector<int64_t> axes_dims_rope = {16, 56, 56};  // sums to head_dim
  float theta = 10000.f;
  bool guidance_embed = true;  // dev: guidance_in present; schnell: absent
  bool qkv_bias = true;

  int64_t mlp_hidden() const { return int64_t(float(hidden_size) * mlp_ratio); }
  // Consistency of the fields (hidden = heads · head_dim, axes sum to head_dim, even axes, ...).
  rt::Status validate() const;
  std::string str() const;  // one line for logs

  static Config flux_dev();
  static Config flux_schnell();
  // "flux-dev" or "flux-schnell".
  static rt::Result<Config> preset(const std::string& name);

  // diffusers FluxTransformer2DModel config.json; missing keys take diffusers' defaults.
  static rt::Result<Config> from_diffusers_json(const nlohmann::json& j);
  // Everything from the canonical (BFL-named) tensor shapes. axes_dims_rope cannot be read from
  // shapes: it comes from `diffusers_json` when given (a config.json next to the weights), else the
  // Flux value (16, 56, 56) when head_dim is 128, else an error asking for the config.
  static rt::Result<Config> from_checkpoint(const weights::MappedStore& store,
                                            const nlohmann::json* diffusers_json = nullptr);
};

}  // namespace dit::flux
