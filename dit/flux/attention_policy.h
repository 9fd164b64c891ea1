// Which attention method each attention call of a Flux forward runs: one user-chosen method with dense
// warm-up steps and dense layers (issue 5, "Policies"). Plain data handed down with each forward, so two
// pipelines in one process can run different methods.
#pragma once
#include <string>
#include <vector>

#include "sparse_attention/mask_rule.h"
#include "sparse_attention/methods/method_spec.h"

namespace dit::flux {

// Flux's joint sequence as sparse attention sees it: text_len T5 tokens, then the grid_h x grid_w packed
// latent tokens in row-major order.
sattn::TokenLayout joint_tokens(int64_t text_len, int64_t grid_h, int64_t grid_w);

// "" when `method` fits a width x height image with text_len T5 tokens (the grid is height/16 x width/16:
// 8x VAE, 2x2 packing), else "does not fit WxH (a hxw token grid): why".
std::string attention_fit_error(const sattn::MethodSpec& method, int64_t width, int64_t height, int64_t text_len);

struct AttentionPolicy {
  sattn::MethodSpec method;       // dense by default
  int dense_steps = 0;            // steps [0, dense_steps) run dense
  std::vector<int> dense_layers;  // layer indices (double blocks first, then single blocks) that always run dense

  // The one decision: the method of `layer` at `step`. An unknown step (-1) counts as a warm-up step.
  sattn::MethodSpec method_for(int step, int layer) const;
  // Which of layers [0, num_layers) run dense at `step`: one 'd' (dense) or 's' (the method) per layer.
  // Steps with equal keys do the same attention work, so a CUDA graph captured at one replays the other.
  std::string dense_key(int step, int num_layers) const;
  // For logs: "gna:window=1x8x8,stride=1x4x4,dilation=1x1x1,causal=0x0x0 after 4 dense steps".
  std::string describe() const;
};

}  // namespace dit::flux
