// Configuration of the Flux autoencoder's decoder (BFL `AutoEncoderParams`, diffusers `AutoencoderKL`).
// Ref: black-forest-labs/flux src/flux/modules/autoencoder.py; diffusers models/autoencoders/autoencoder_kl.py.
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/base/status.h"
#include "weights/name_map.h"

namespace vae::flux {

// Defaults are FLUX.1's `ae.safetensors` (models.md §1.9).
struct Config {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  int64_t latent_channels = 16;
  // Channels of the up blocks in BFL index order: up[i] outputs block_out_channels[i]; up[n-1] runs first.
  std::vector<int64_t> block_out_channels = {128, 256, 512, 512};
  int64_t layers_per_block = 2;  // the decoder has layers_per_block + 1 resnets per up block
  int64_t norm_num_groups = 32;
  float scaling_factor = 0.3611f;
  float shift_factor = 0.1159f;
  bool use_post_quant_conv = false;
  bool mid_block_add_attention = true;
  float eps = 1e-6f;  // every GroupNorm of the decoder (hard-coded in both references)

  int64_t num_up_blocks() const { return int64_t(block_out_channels.size()); }
  int64_t mid_channels() const { return block_out_channels.back(); }
  int64_t upscale() const { return int64_t(1) << (num_up_blocks() - 1); }  // image side / latent side

  static Config flux1() { return Config{}; }
  // AutoencoderKL config.json keys; a missing key takes AutoencoderKL.__init__'s default (which are SD
  // 1.x values, not Flux's). Rejects decoders this class does not implement (block or activation types).
  static rt::Result<Config> from_diffusers_json(const nlohmann::json& j);
  // Dimensions from canonical tensor shapes (a store mapped by one of the VAE name maps). The group
  // count and the latent scaling cannot be read from shapes: they keep `base`'s values (Flux's when
  // no base is given).
  static rt::Result<Config> from_checkpoint(const weights::MappedStore& store, const Config& base);
  static rt::Result<Config> from_checkpoint(const weights::MappedStore& store);

  rt::Status validate() const;
  std::string str() const;  // one line for logs
};

}  // namespace vae::flux
