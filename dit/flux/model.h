// The Flux transformer (BFL src/flux/model.py), canonical BFL weight names.
// B batch, N image tokens, T text tokens, C hidden, C_in/C_out packed latent features.
#pragma once
#include <optional>
#include <vector>

#include "dit/flux/blocks.h"
#include "dit/flux/config.h"

namespace dit::flux {

class FluxTransformer {
 public:
  // Strict: every canonical tensor must be present with its shape and nothing else may be left over
  // (WeightLoader::finish()).
  static rt::Result<FluxTransformer> load(const weights::WeightLoader& w, const Config& config);

  // img [B, N, C_in] packed latents; img_ids [N, 3] or [B, N, 3] (the first batch entry is used, as
  // diffusers does); txt [B, T, D_txt]; txt_ids [T, 3] (or [B, T, 3]); timesteps [B] sigma in 0..1
  // (scaled by 1000 inside); y [B, D_pool]; guidance [B] (needed iff config().guidance_embed,
  // scaled by 1000 inside) or undefined. step_index is passed to attention policies. -> [B, N, C_out].
  rt::Tensor forward(const rt::Context& ctx, const rt::Tensor& img, const rt::Tensor& img_ids, const rt::Tensor& txt,
                     const rt::Tensor& txt_ids, const rt::Tensor& timesteps, const rt::Tensor& y,
                     const rt::Tensor& guidance, int step_index = -1) const;
  // The same with the RoPE tables made once by rope() (they depend only on the ids, so a denoising loop
  // builds them once instead of every step).
  rt::Tensor forward(const rt::Context& ctx, const rt::Tensor& img, const RopeTables& pe, const rt::Tensor& txt,
                     const rt::Tensor& timesteps, const rt::Tensor& y, const rt::Tensor& guidance,
                     int step_index = -1) const;
  // RoPE tables [T+N, D/2] for txt_ids then img_ids (host tensors [L, 3] or [B, L, 3]), on ctx's device in f32,
  // with the image grid when img_ids are latent_image_ids' (0, r, c) in row-major order.
  RopeTables rope(const rt::Context& ctx, const rt::Tensor& img_ids, const rt::Tensor& txt_ids) const;

  // The two halves of forward(). conditioning: vec [B, C] in ctx's dtype = time_in(TE(1000·t))
  // (+ guidance_in(TE(1000·g))) + vector_in(y), with timesteps/y/guidance as forward() takes them. It
  // embeds the timesteps on the host and uploads them, so it stays outside a captured CUDA graph.
  rt::Tensor conditioning(const rt::Context& ctx, const rt::Tensor& timesteps, const rt::Tensor& y,
                          const rt::Tensor& guidance) const;
  // The blocks given vec [B, C]: img [B, N, C_in], txt [B, T, D_txt] (any float dtype, cast to ctx's)
  // -> [B, N, C_out] in ctx's dtype. Device work only (no host reads or uploads), so it can be captured
  // once its plans exist (dit/flux/captured_forward.h).
  // attention chooses each attention call's method (dense by default).
  rt::Tensor forward_vec(const rt::Context& ctx, const rt::Tensor& img, const RopeTables& pe, const rt::Tensor& txt,
                         const rt::Tensor& vec, int step_index = -1, const AttentionPolicy& attention = {}) const;

  const Config& config() const { return config_; }

 private:
  Config config_;
  rt::nn::Linear img_in, txt_in;
  MLPEmbedder time_in, vector_in;
  std::optional<MLPEmbedder> guidance_in;
  std::vector<DoubleStreamBlock> double_blocks;
  std::vector<SingleStreamBlock> single_blocks;
  LastLayer final_layer;
};

}  // namespace dit::flux
