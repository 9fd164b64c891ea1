#include "app/pipeline/denoise.h"

#include <vector>

#include "dit/flux/captured_forward.h"

namespace app {

using rt::Tensor;

rt::Tensor denoise(const rt::Context& ctx, const dit::flux::FluxTransformer& model, Tensor latents,
                   const FluxCond& cond, const Tensor& img_ids, const dit::sampling::Schedule& schedule,
                   const DenoiseOptions& options) {
  const int64_t B = latents.size(0);
  const int n = schedule.steps();
  CHECK(int(schedule.sigmas.size()) == n + 1, "schedule: ", schedule.sigmas.size(), " sigmas for ", n, " steps");
  const bool do_true_cfg = options.negative != nullptr && options.true_cfg_scale > 1.f;

  // guidance = full([1], guidance_scale).expand(B), only for guidance-distilled models.
  Tensor guidance;
  if (model.config().guidance_embed) {
    CHECK(options.guidance.has_value(), "this Flux model embeds guidance; DenoiseOptions::guidance must be set");
    guidance = Tensor::full({B}, *options.guidance);
  }
  // The ids (so the RoPE tables) are the same every step; a negative prompt has the same text length.
  const dit::flux::RopeTables pe = model.rope(ctx, img_ids, cond.txt_ids);
  CHECK(!do_true_cfg || options.negative->txt_ids.size(0) == cond.txt_ids.size(0), "negative prompt length ",
        options.negative->txt_ids.str(), " differs from the prompt's ", cond.txt_ids.str());
  dit::flux::AttentionPolicy attention = options.attention;
  attention.num_steps = n;  // PARO's timestep buckets
  dit::flux::CapturedForward step(ctx, model, pe, options.cuda_graph, attention);
  for (int i = 0; i < n; ++i) {
    // The pipeline passes the scheduler timestep divided by 1000 (float32), not the sigma itself.
    const Tensor t = Tensor::full({B}, schedule.timesteps[i] / 1000.f);
    std::vector<dit::flux::ForwardBranch> branches{{cond.txt, model.conditioning(ctx, t, cond.y, guidance)}};
    if (do_true_cfg) branches.push_back({options.negative->txt, model.conditioning(ctx, t, options.negative->y, guidance)});
    const std::vector<Tensor> out = step.run(ctx, latents, branches, i);
    // The model computes in the context's dtype; the update runs in the latents' dtype (f32), as
    // diffusers' scheduler upcasts before stepping.
    Tensor v = rt::cast(ctx, out[0], latents.dtype());
    if (do_true_cfg) v = dit::sampling::true_cfg(ctx, v, rt::cast(ctx, out[1], latents.dtype()), options.true_cfg_scale);
    latents = dit::sampling::euler_step(ctx, latents, v, schedule.sigmas[i], schedule.sigmas[i + 1]);
    if (options.progress) options.progress(i + 1, n);
  }
  if (options.graph_steps) *options.graph_steps = step.graph_calls();
  return latents;
}

Tensor pack_latents(const rt::Context& ctx, const Tensor& z) {
  CHECK(z.dim() == 4 && z.size(2) % 2 == 0 && z.size(3) % 2 == 0, "pack_latents: need [B, C, H', W'] with even H', W', got ",
        z.str());
  const int64_t B = z.size(0), C = z.size(1), h2 = z.size(2) / 2, w2 = z.size(3) / 2;
  return rt::reshape(ctx, rt::reshape(ctx, z, {B, C, h2, 2, w2, 2}).permute({0, 2, 4, 1, 3, 5}), {B, h2 * w2, C * 4});
}

Tensor unpack_latents(const rt::Context& ctx, const Tensor& x, int64_t latent_h, int64_t latent_w) {
  const int64_t h2 = latent_h / 2, w2 = latent_w / 2;
  CHECK(x.dim() == 3 && latent_h % 2 == 0 && latent_w % 2 == 0 && x.size(1) == h2 * w2 && x.size(2) % 4 == 0,
        "unpack_latents: ", x.str(), " is not packed latents of ", latent_h, "x", latent_w);
  const int64_t B = x.size(0), C = x.size(2) / 4;
  return rt::reshape(ctx, rt::reshape(ctx, x, {B, h2, w2, C, 2, 2}).permute({0, 3, 1, 4, 2, 5}), {B, C, latent_h, latent_w});
}

Tensor latent_image_ids(int64_t h2, int64_t w2) {
  Tensor ids = Tensor::zeros({h2 * w2, 3});
  float* p = ids.data<float>();
  for (int64_t r = 0; r < h2; ++r) {
    for (int64_t c = 0; c < w2; ++c) {
      p[(r * w2 + c) * 3 + 1] = float(r);
      p[(r * w2 + c) * 3 + 2] = float(c);
    }
  }
  return ids;
}

Tensor text_ids(int64_t text_len) { return Tensor::zeros({text_len, 3}); }

}  // namespace app
