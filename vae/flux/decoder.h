// The Flux autoencoder's decoder: latent [B, C_lat, h, w] -> image [B, C_out, s·h, s·w], s = 2^(n-1)
// for n up blocks (8 for Flux). Mirrors BFL's Decoder; the same weights come from diffusers'
// AutoencoderKL through the name map (names.h).
// Ref: black-forest-labs/flux src/flux/modules/autoencoder.py (Decoder, AutoEncoder.decode).
#pragma once
#include <vector>

#include "vae/common/blocks.h"
#include "vae/flux/config.h"

namespace vae::flux {

// The pipeline's latent un-normalisation before decoding: z / scaling_factor + shift_factor.
rt::Tensor unscale_latents(const rt::Context& ctx, const rt::Tensor& z, const Config& cfg);

class Decoder {
 public:
  // Reads canonical names (a store mapped by names.h) and reports every missing, wrong-shaped or
  // unexpected tensor in one error.
  static rt::Result<Decoder> load(const weights::WeightLoader& w, const Config& cfg);

  // z is the already unscaled latent (see unscale_latents). Batch items are decoded one at a time,
  // so peak memory is that of a single image.
  rt::Tensor forward(const rt::Context& ctx, const rt::Tensor& z) const;

  const Config& config() const { return cfg_; }

 private:
  struct UpBlock {
    std::vector<ResnetBlock> block;
    Upsample upsample;  // absent (undefined conv) on up[0], the last to run
  };

  rt::Tensor decode_one(const rt::Context& ctx, const rt::Tensor& z) const;  // [1, C_lat, h, w]

  Config cfg_;
  rt::nn::Conv2d post_quant_conv;  // 1x1 C_lat -> C_lat, only with use_post_quant_conv
  rt::nn::Conv2d conv_in;
  ResnetBlock mid_block_1, mid_block_2;
  AttnBlock mid_attn_1;  // only with mid_block_add_attention
  std::vector<UpBlock> up;  // BFL order: up[n-1] runs first
  rt::nn::GroupNorm norm_out;
  rt::nn::Conv2d conv_out;
};

}  // namespace vae::flux
