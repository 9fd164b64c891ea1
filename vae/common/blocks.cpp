// ResnetBlock, AttnBlock and Upsample of the 2D autoencoders (see blocks.h).
#include "vae/common/blocks.h"

#include "sparse_attention/attention.h"

namespace vae {

static rt::nn::GroupNorm load_group_norm(const weights::WeightLoader& w, int64_t c, int64_t groups, float eps) {
  rt::nn::GroupNorm n;
  n.weight = w.get("weight", {c});
  n.bias = w.get("bias", {c});
  n.groups = groups;
  n.eps = eps;
  return n;
}

static rt::nn::Conv2d load_conv(const weights::WeightLoader& w, int64_t cin, int64_t cout, int64_t k) {
  rt::nn::Conv2d c;
  c.weight = w.get("weight", {cout, cin, k, k});
  c.bias = w.get("bias", {cout});
  c.padding = k / 2;
  return c;
}

ResnetBlock ResnetBlock::load(const weights::WeightLoader& w, int64_t cin, int64_t cout, int64_t groups, float eps) {
  ResnetBlock b;
  b.norm1 = load_group_norm(w.pp("norm1"), cin, groups, eps);
  b.conv1 = load_conv(w.pp("conv1"), cin, cout, 3);
  b.norm2 = load_group_norm(w.pp("norm2"), cout, groups, eps);
  b.conv2 = load_conv(w.pp("conv2"), cout, cout, 3);
  if (cin != cout) b.nin_shortcut = load_conv(w.pp("nin_shortcut"), cin, cout, 1);
  return b;
}

rt::Tensor ResnetBlock::forward(const rt::Context& ctx, rt::Tensor x) const {
  rt::Tensor h = norm1(ctx, x);
  // The shortcut goes first so that a wide input (256 channels at 1024x1024 is 1 GB) is released
  // before SiLU allocates: this block sets the decoder's peak memory.
  if (nin_shortcut.weight.defined()) x = nin_shortcut(ctx, x);
  h = rt::silu(ctx, h);
  h = conv1(ctx, h);
  h = rt::silu(ctx, norm2(ctx, h));
  h = conv2(ctx, h);
  return rt::add(ctx, x, h);
}

AttnBlock AttnBlock::load(const weights::WeightLoader& w, int64_t c, int64_t groups, float eps) {
  AttnBlock a;
  a.norm = load_group_norm(w.pp("norm"), c, groups, eps);
  auto proj = [&](const char* name) {
    rt::nn::Linear l;
    l.weight = w.pp(name).get("weight", {c, c, 1, 1}).reshape({c, c});
    l.bias = w.pp(name).get("bias", {c});
    return l;
  };
  a.q = proj("q");
  a.k = proj("k");
  a.v = proj("v");
  a.proj_out = proj("proj_out");
  return a;
}

rt::Tensor AttnBlock::forward(const rt::Context& ctx, const rt::Tensor& x) const {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const rt::Tensor tokens = rt::contiguous(ctx, norm(ctx, x).view({b, c, h * w}).transpose(1, 2));  // [B, L, C]
  sattn::AttentionParams p;
  p.q = q(ctx, tokens).view({b, h * w, 1, c});  // [B, L, 1, C]
  p.k = k(ctx, tokens).view({b, h * w, 1, c});
  p.v = v(ctx, tokens).view({b, h * w, 1, c});
  const rt::Tensor attn = sattn::attention(ctx, p).view({b, h * w, c});          // [B, L, C]
  const rt::Tensor out = rt::reshape(ctx, proj_out(ctx, attn).transpose(1, 2), {b, c, h, w});  // [B, C, H, W]
  return rt::add(ctx, x, out);
}

Upsample Upsample::load(const weights::WeightLoader& w, int64_t c) {
  Upsample u;
  u.conv = load_conv(w.pp("conv"), c, c, 3);
  return u;
}

rt::Tensor Upsample::forward(const rt::Context& ctx, rt::Tensor x) const {
  x = rt::upsample_nearest2d(ctx, x, 2);
  return conv(ctx, x);
}

}  // namespace vae
