#include "dit/flux/model.h"

namespace dit::flux {

using rt::Tensor;

// diffusers' Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0): [cos | sin].
static constexpr int64_t kTimeEmbedDim = 256;

rt::Result<FluxTransformer> FluxTransformer::load(const weights::WeightLoader& w, const Config& config) {
  RT_TRY(config.validate());
  FluxTransformer m;
  m.config_ = config;
  const int64_t C = config.hidden_size;
  auto linear = [&](const char* name, int64_t in, int64_t out) {
    return rt::nn::Linear{w.pp(name).get("weight", {out, in}), w.pp(name).get("bias", {out})};
  };
  m.img_in = linear("img_in", config.in_channels, C);
  m.txt_in = linear("txt_in", config.context_dim, C);
  m.time_in = MLPEmbedder::load(w.pp("time_in"), kTimeEmbedDim, C);
  m.vector_in = MLPEmbedder::load(w.pp("vector_in"), config.pooled_dim, C);
  if (config.guidance_embed) m.guidance_in = MLPEmbedder::load(w.pp("guidance_in"), kTimeEmbedDim, C);
  for (int i = 0; i < int(config.depth); ++i)
    m.double_blocks.push_back(DoubleStreamBlock::load(w.pp("double_blocks", i), config, i));
  for (int i = 0; i < int(config.depth_single); ++i)
    m.single_blocks.push_back(SingleStreamBlock::load(w.pp("single_blocks", i), config, int(config.depth) + i));
  m.final_layer = LastLayer::load(w.pp("final_layer"), config);
  RT_TRY(w.finish().with_context("loading the Flux transformer: "));
  return m;
}

Tensor FluxTransformer::conditioning(const rt::Context& ctx, const Tensor& timesteps, const Tensor& y,
                                     const Tensor& guidance) const {
  const Config& c = config_;
  CHECK(timesteps.dim() == 1, "timesteps must be [B], got ", timesteps.str());
  const int64_t B = timesteps.size(0);
  CHECK(y.dim() == 2 && y.size(0) == B && y.size(1) == c.pooled_dim, "y must be [", B, ", ", c.pooled_dim, "], got ",
        y.str());
  CHECK(!c.guidance_embed || (guidance.defined() && guidance.dim() == 1 && guidance.size(0) == B),
        "this Flux model embeds guidance: guidance must be [", B, "], got ",
        guidance.defined() ? guidance.str() : std::string("none"));
  // The ×1000 is a float32 multiply before the sinusoid, as diffusers does it.
  auto embed = [&](const Tensor& t) {
    Tensor scaled = rt::to_host(ctx, t).clone();  // [B] f32 on the host
    for (int64_t i = 0; i < scaled.numel(); ++i) static_cast<float*>(scaled.raw_data())[i] *= 1000.f;
    return rt::nn::timestep_embedding(ctx, scaled, kTimeEmbedDim, /*flip_sin_to_cos=*/true, /*downscale_freq_shift=*/0.f);
  };
  Tensor vec = time_in(ctx, embed(timesteps));  // [B, C]
  if (guidance_in) vec = rt::add(ctx, vec, (*guidance_in)(ctx, embed(guidance)));
  return rt::add(ctx, vec, vector_in(ctx, rt::cast(ctx, y, ctx.dtype())));
}

static Tensor ids_2d(const Tensor& ids, const char* what) {
  CHECK(ids.dim() == 2 || ids.dim() == 3, what, " must be [L, 3] or [B, L, 3], got ", ids.str());
  return ids.dim() == 3 ? ids.select(0, 0) : ids;
}

Tensor FluxTransformer::forward(const rt::Context& ctx, const Tensor& img_in_x, const Tensor& img_ids,
                                const Tensor& txt_in_x, const Tensor& txt_ids, const Tensor& timesteps,
                                const Tensor& y, const Tensor& guidance, int step_index) const {
  const Config& c = config_;
  const int64_t B = img_in_x.size(0);
  CHECK(img_in_x.dim() == 3 && img_in_x.size(2) == c.in_channels, "img must be [B, N, ", c.in_channels, "], got ",
        img_in_x.str());
  CHECK(txt_in_x.dim() == 3 && txt_in_x.size(0) == B && txt_in_x.size(2) == c.context_dim, "txt must be [", B,
        ", T, ", c.context_dim, "], got ", txt_in_x.str());
  CHECK(timesteps.dim() == 1 && timesteps.size(0) == B, "timesteps must be [", B, "], got ", timesteps.str());
  const Tensor img_pos = ids_2d(img_ids, "img_ids"), txt_pos = ids_2d(txt_ids, "txt_ids");
  CHECK(img_pos.size(0) == img_in_x.size(1) && txt_pos.size(0) == txt_in_x.size(1), "ids ", img_pos.str(), " / ",
        txt_pos.str(), " do not match img ", img_in_x.str(), " / txt ", txt_in_x.str());
  return forward(ctx, img_in_x, rope(ctx, img_ids, txt_ids), txt_in_x, timesteps, y, guidance, step_index);
}

// h x w when the image ids [N, 3] are (0, n / w, n % w) for n < N = h·w (latent_image_ids), else 0 x 0.
static void image_grid(const Tensor& ids_host, int64_t* h, int64_t* w) {
  *h = *w = 0;
  const std::vector<float> ids = ids_host.to_vector();
  const int64_t n = ids_host.size(0);
  if (n == 0 || ids_host.size(1) != 3) return;
  const int64_t width = int64_t(ids[(n - 1) * 3 + 2]) + 1, height = int64_t(ids[(n - 1) * 3 + 1]) + 1;
  if (width <= 0 || height <= 0 || width * height != n) return;
  for (int64_t i = 0; i < n; ++i)
    if (ids[i * 3] != 0.f || ids[i * 3 + 1] != float(i / width) || ids[i * 3 + 2] != float(i % width)) return;
  *h = height;
  *w = width;
}

RopeTables FluxTransformer::rope(const rt::Context& ctx, const Tensor& img_ids, const Tensor& txt_ids) const {
  const Tensor img_pos = rt::to_host(ctx, ids_2d(img_ids, "img_ids")), txt_pos = rt::to_host(ctx, ids_2d(txt_ids, "txt_ids"));
  const rt::Context host;
  const Tensor ids = rt::concat(host, {txt_pos, img_pos}, 0);  // [T+N, 3]
  const RopeTables pe = embed_nd(ids, config_.axes_dims_rope, config_.theta);  // [T+N, D/2]
  RopeTables out{rt::to_device(ctx, pe.cos, ctx.device(), rt::DType::F32), rt::to_device(ctx, pe.sin, ctx.device(), rt::DType::F32)};
  image_grid(img_pos, &out.grid_h, &out.grid_w);
  return out;
}

Tensor FluxTransformer::forward(const rt::Context& ctx, const Tensor& img_in_x, const RopeTables& pe, const Tensor& txt_in_x,
                                const Tensor& timesteps, const Tensor& y, const Tensor& guidance, int step_index) const {
  CHECK(timesteps.dim() == 1 && timesteps.size(0) == img_in_x.size(0), "timesteps ", timesteps.str(), " do not match img ",
        img_in_x.str());
  return forward_vec(ctx, img_in_x, pe, txt_in_x, conditioning(ctx, timesteps, y, guidance), step_index);
}

Tensor FluxTransformer::forward_vec(const rt::Context& ctx, const Tensor& img_in_x, const RopeTables& pe,
                                    const Tensor& txt_in_x, const Tensor& vec_in, int step_index,
                                    const AttentionPolicy& attention) const {
  const Config& c = config_;
  CHECK(img_in_x.dim() == 3 && img_in_x.size(2) == c.in_channels, "img must be [B, N, ", c.in_channels, "], got ",
        img_in_x.str());
  const int64_t B = img_in_x.size(0);
  CHECK(txt_in_x.dim() == 3 && txt_in_x.size(0) == B && txt_in_x.size(2) == c.context_dim, "txt must be [", B,
        ", T, ", c.context_dim, "], got ", txt_in_x.str());
  CHECK(vec_in.dim() == 2 && vec_in.size(0) == B && vec_in.size(1) == c.hidden_size, "vec must be [", B, ", ",
        c.hidden_size, "], got ", vec_in.str());
  CHECK(pe.cos.dim() == 2 && pe.cos.size(0) == img_in_x.size(1) + txt_in_x.size(1), "RoPE tables ", pe.cos.str(),
        " do not cover txt ", txt_in_x.str(), " + img ", img_in_x.str());
  // Inputs may arrive in f32 (latents, encoder outputs); the model computes in the context's dtype.
  Tensor img = img_in(ctx, rt::cast(ctx, img_in_x, ctx.dtype()));  // [B, N, C]
  Tensor txt = txt_in(ctx, rt::cast(ctx, txt_in_x, ctx.dtype()));  // [B, T, C]
  const Tensor vec = rt::cast(ctx, vec_in, ctx.dtype());            // [B, C]

  for (const DoubleStreamBlock& block : double_blocks) block.forward(ctx, img, txt, vec, pe, step_index, attention);

  const int64_t t_len = txt.size(1);
  Tensor x = rt::concat(ctx, {txt, img}, 1);  // [B, T+N, C]
  for (const SingleStreamBlock& block : single_blocks) x = block.forward(ctx, x, vec, pe, step_index, attention);
  img = x.slice(1, t_len, x.size(1));  // [B, N, C]

  return final_layer.forward(ctx, img, vec);  // [B, N, C_out]
}

}  // namespace dit::flux
