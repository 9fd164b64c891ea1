// Flux autoencoder decoder (see decoder.h). B batch, C channels, h/w latent size, H/W image size.
#include "vae/flux/decoder.h"

#include <algorithm>

namespace vae::flux {

rt::Tensor unscale_latents(const rt::Context& ctx, const rt::Tensor& z, const Config& cfg) {
  return rt::affine(ctx, z, 1.f / cfg.scaling_factor, cfg.shift_factor);
}

rt::Result<Decoder> Decoder::load(const weights::WeightLoader& w, const Config& cfg) {
  RT_TRY(cfg.validate());
  Decoder d;
  d.cfg_ = cfg;
  const int64_t n = cfg.num_up_blocks(), groups = cfg.norm_num_groups, top = cfg.mid_channels();
  const float eps = cfg.eps;
  if (cfg.use_post_quant_conv) {
    const auto pq = w.pp("post_quant_conv");
    d.post_quant_conv.weight = pq.get("weight", {cfg.latent_channels, cfg.latent_channels, 1, 1});
    d.post_quant_conv.bias = pq.get("bias", {cfg.latent_channels});
  }
  const auto dec = w.pp("decoder");
  d.conv_in.weight = dec.pp("conv_in").get("weight", {top, cfg.latent_channels, 3, 3});
  d.conv_in.bias = dec.pp("conv_in").get("bias", {top});
  d.conv_in.padding = 1;
  d.mid_block_1 = ResnetBlock::load(dec.pp("mid").pp("block_1"), top, top, groups, eps);
  if (cfg.mid_block_add_attention) d.mid_attn_1 = AttnBlock::load(dec.pp("mid").pp("attn_1"), top, groups, eps);
  d.mid_block_2 = ResnetBlock::load(dec.pp("mid").pp("block_2"), top, top, groups, eps);
  d.up.resize(size_t(n));
  int64_t cin = top;
  for (int64_t i = n - 1; i >= 0; --i) {
    const auto wi = dec.pp("up", int(i));
    const int64_t cout = cfg.block_out_channels[size_t(i)];
    for (int64_t j = 0; j <= cfg.layers_per_block; ++j) {
      d.up[size_t(i)].block.push_back(ResnetBlock::load(wi.pp("block", int(j)), j == 0 ? cin : cout, cout, groups, eps));
    }
    if (i != 0) d.up[size_t(i)].upsample = Upsample::load(wi.pp("upsample"), cout);
    cin = cout;
  }
  const int64_t last = cfg.block_out_channels[0];
  d.norm_out.weight = dec.pp("norm_out").get("weight", {last});
  d.norm_out.bias = dec.pp("norm_out").get("bias", {last});
  d.norm_out.groups = groups;
  d.norm_out.eps = eps;
  d.conv_out.weight = dec.pp("conv_out").get("weight", {cfg.out_channels, last, 3, 3});
  d.conv_out.bias = dec.pp("conv_out").get("bias", {cfg.out_channels});
  d.conv_out.padding = 1;
  RT_TRY(w.finish());
  return d;
}

rt::Tensor Decoder::decode_one(const rt::Context& ctx, const rt::Tensor& z) const {
  rt::Tensor h = post_quant_conv.weight.defined() ? post_quant_conv(ctx, z) : z;
  h = conv_in(ctx, h);                              // [1, C_top, h, w]
  h = mid_block_1.forward(ctx, std::move(h));
  if (mid_attn_1.q.weight.defined()) h = mid_attn_1.forward(ctx, h);
  h = mid_block_2.forward(ctx, std::move(h));
  for (size_t i = up.size(); i-- > 0;) {
    for (const ResnetBlock& b : up[i].block) h = b.forward(ctx, std::move(h));  // [1, C_i, ., .]
    if (up[i].upsample.conv.weight.defined()) h = up[i].upsample.forward(ctx, std::move(h));  // spatial x2
  }
  h = rt::silu(ctx, norm_out(ctx, h));
  return conv_out(ctx, h);                          // [1, C_out, H, W]
}

rt::Tensor Decoder::forward(const rt::Context& ctx, const rt::Tensor& z) const {
  CHECK(z.dim() == 4 && z.size(1) == cfg_.latent_channels, "VAE decoder: latent must be [B, ", cfg_.latent_channels,
        ", h, w], got ", z.str());
  // One image at a time bounds the activation memory of the full-resolution layers.
  const rt::Tensor zc = rt::cast(ctx, z, ctx.dtype());
  std::vector<rt::Tensor> images;
  for (int64_t i = 0; i < z.size(0); ++i) images.push_back(decode_one(ctx, zc.slice(0, i, i + 1)));  // [1, C_out, H, W]
  return images.size() == 1 ? images[0] : rt::concat(ctx, images, 0);
}

}  // namespace vae::flux
