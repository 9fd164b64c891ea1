// The Flux denoising loop as diffusers' FluxPipeline runs it, and the latent packing helpers
// (models.md §1.3). B batch, C latent channels (16), H'/W' latent height/width, N = (H'/2)(W'/2).
#pragma once
#include <functional>
#include <optional>

#include "dit/flux/model.h"
#include "dit/sampling/flow_match.h"

namespace app {

// One prompt's conditioning: T5 sequence, CLIP pooled vector and the text position ids.
struct FluxCond {
  rt::Tensor txt;      // [B, T, D_txt]
  rt::Tensor y;        // [B, D_pool]
  rt::Tensor txt_ids;  // [T, 3], zeros for Flux
};

struct DenoiseOptions {
  std::optional<float> guidance;         // embedded guidance scale; used iff the model embeds guidance
  const FluxCond* negative = nullptr;    // with true_cfg_scale > 1: v = v_neg + s·(v_pos − v_neg)
  float true_cfg_scale = 1.f;
  std::function<void(int step, int num_steps)> progress;  // after each step: (i + 1, N)
  // GPU: from the second step on, replay the step's model calls as one CUDA graph
  // (dit/flux/captured_forward.h). Ignored on the CPU and in debug-sync mode.
  bool cuda_graph = true;
  // The attention method of each step and layer (dense warm-up steps, dense layers); dense by default.
  dit::flux::AttentionPolicy attention;
  // When set, receives the number of steps whose model calls were replayed from a CUDA graph (tests).
  int* graph_steps = nullptr;
};

// latents [B, N, C_in] packed noise; img_ids [N, 3]. Returns the packed latents after the last step.
rt::Tensor denoise(const rt::Context& ctx, const dit::flux::FluxTransformer& model, rt::Tensor latents,
                   const FluxCond& cond, const rt::Tensor& img_ids, const dit::sampling::Schedule& schedule,
                   const DenoiseOptions& options = {});

// [B, C, H', W'] -> [B, (H'/2)(W'/2), 4C]; feature index ch·4 + dy·2 + dx. H', W' even.
rt::Tensor pack_latents(const rt::Context& ctx, const rt::Tensor& z);
// Inverse of pack_latents: [B, (H'/2)(W'/2), 4C] -> [B, C, H', W'].
rt::Tensor unpack_latents(const rt::Context& ctx, const rt::Tensor& x, int64_t latent_h, int64_t latent_w);
// [h2·w2, 3] float: row n = r·w2 + c holds (0, r, c).
rt::Tensor latent_image_ids(int64_t h2, int64_t w2);
// [T, 3] zeros.
rt::Tensor text_ids(int64_t text_len);

}  // namespace app
