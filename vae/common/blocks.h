// 2D autoencoder building blocks shared by the AutoencoderKL-style VAEs (Flux, SD): the ResNet block,
// the single-head spatial self-attention block, and the nearest x2 + conv upsampler.
// Ref: black-forest-labs/flux src/flux/modules/autoencoder.py (ResnetBlock, AttnBlock, Upsample).
// B batch, C channels, H/W spatial size, L = H·W tokens.
#pragma once
#include "runtime/nn/layers.h"
#include "weights/name_map.h"

namespace vae {

// h = conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))); out = (cin != cout ? nin_shortcut(x) : x) + h.
struct ResnetBlock {
  rt::nn::GroupNorm norm1, norm2;
  rt::nn::Conv2d conv1, conv2;  // 3x3, padding 1
  rt::nn::Conv2d nin_shortcut;  // 1x1; undefined weight when cin == cout

  static ResnetBlock load(const weights::WeightLoader& w, int64_t cin, int64_t cout, int64_t groups, float eps);
  // x [B, cin, H, W] -> [B, cout, H, W]. Takes x by value so the caller can hand over its activation
  // and the block frees it as soon as it is no longer needed.
  rt::Tensor forward(const rt::Context& ctx, rt::Tensor x) const;
};

// x + proj_out(attention(q, k, v)) over the L = H·W positions, one head of width C; q, k, v and
// proj_out are 1x1 convs, applied here as linears over the tokens.
struct AttnBlock {
  rt::nn::GroupNorm norm;
  rt::nn::Linear q, k, v, proj_out;  // weights [C, C] (views of the checkpoint's [C, C, 1, 1])

  static AttnBlock load(const weights::WeightLoader& w, int64_t channels, int64_t groups, float eps);
  rt::Tensor forward(const rt::Context& ctx, const rt::Tensor& x) const;  // [B, C, H, W] -> same
};

// Nearest-neighbour x2 then conv 3x3 (C -> C).
struct Upsample {
  rt::nn::Conv2d conv;

  static Upsample load(const weights::WeightLoader& w, int64_t channels);
  rt::Tensor forward(const rt::Context& ctx, rt::Tensor x) const;  // [B, C, H, W] -> [B, C, 2H, 2W]
};

}  // namespace vae
