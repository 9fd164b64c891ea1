// The single attention entry point. Every attention of every model (DiT joint attention, T5, CLIP,
// the VAE's mid-block attention) calls sattn::attention; methods and kernels live behind it.
// Shapes: q [B, Lq, H, D], k [B, Lk, H, D], v [B, Lk, H, Dv] -> out [B, Lq, H, Dv] (PyTorch order, the
// flash-attention convention). Views with any strides are accepted; the output is contiguous.
#pragma once
#include <string>

#include "context.h"
#include "tensor.h"

namespace sattn {

enum class MaskKind {
  None,    // every query sees every key
  Causal,  // query i sees keys j <= i (CLIP's text tower)
};

struct AttentionParams {
  rt::Tensor q, k, v;
  float scale = 0.f;  // 0 means 1/sqrt(D); T5 passes 1 (it does not scale)
  MaskKind mask = MaskKind::None;
  // Optional additive score bias, [H, Lq, Lk] or [B, H, Lq, Lk] (T5's relative position bias).
  rt::Tensor bias;
  // Where the call sits, so per-layer and per-step policies need no global state.
  int layer_index = -1;
  int step_index = -1;
};

// Softmax attention; softmax statistics in float32 or wider. Aborts (CHECK) on inconsistent shapes,
// which are model bugs, not user errors.
rt::Tensor attention(const rt::Context& ctx, const AttentionParams& p);

}  // namespace sattn
