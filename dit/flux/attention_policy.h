// Which attention method each attention call of a Flux forward runs (issue 5, "Policies"): one user-chosen
// method with dense warm-up steps, dense layers and per-layer methods, and an optional automatic dense
// fallback for calls where a sparse method cannot beat dense. Plain data handed down with each forward, so
// two pipelines in one process can run different methods.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "context.h"
#include "sparse_attention/attention.h"
#include "sparse_attention/mask_rule.h"
#include "sparse_attention/methods/method_spec.h"

namespace dit::flux {

// Flux's joint sequence as sparse attention sees it: text_len T5 tokens, then the grid_h x grid_w packed
// latent tokens in row-major order.
sattn::TokenLayout joint_tokens(int64_t text_len, int64_t grid_h, int64_t grid_w);

// "" when `method` fits a width x height image with text_len T5 tokens (the grid is height/16 x width/16:
// 8x VAE, 2x2 packing), else "does not fit WxH (a hxw token grid): why".
std::string attention_fit_error(const sattn::MethodSpec& method, int64_t width, int64_t height, int64_t text_len);

// At or above this tile density the block-sparse kernel cannot beat cuDNN's dense kernel: on full tiles it
// runs at 0.40-0.51x cuDNN's throughput with mma.sync (docs/performance.md, run S1: Flux, Wan and
// HunyuanVideo shapes), so visiting half of the tiles takes about as long as cuDNN visiting all of them, and
// sparse layouts lose another 5-40% per visited tile. The warp-specialized wgmma kernel on Hopper runs at
// 0.78-1.11x (docs/performance.md, session 22's sweep), a break-even nearer 0.8-0.9; 0.5 keeps one rule,
// and so one image, on every device.
inline constexpr double kDenseFallbackTileDensity = 0.5;

// Why the structured call `p` (method, tokens and q/k/v set as the model would run it; only the tensors'
// shapes, dtype and device are read) should run dense attention instead of its method, or "" to run the
// method. Dense instead of the method changes the result from the method's to full attention's, so only
// callers that accept that ask (AttentionPolicy::fallback; `ditrun compare` compares methods as they are).
// Reasons: the layout's tile density >= kDenseFallbackTileDensity (short sequences and windows that
// cover most of the grid: the decision is the same on every device, so CPU and GPU runs agree), or, on a
// GPU, a call the block-sparse kernel refuses (its replacement, the masked dense reference, is slower than
// dense). Plans the layout (cached on GPUs); "" for dense methods and for methods that do not fit the
// tokens (the call itself reports those).
std::string dense_fallback_reason(const rt::Context& ctx, const sattn::AttentionParams& p);

struct AttentionPolicy {
  sattn::MethodSpec method;                      // dense by default
  int dense_steps = 0;                           // steps [0, dense_steps) run dense
  std::vector<int> dense_layers;                 // layers (double blocks first, then single blocks) always dense
  std::map<int, sattn::MethodSpec> layer_methods;  // per-layer methods in place of `method` (dense_layers win)
  // Run dense where dense_fallback_reason says so (one stderr line per distinct method and reason). Off by
  // default: callers that compare methods must not get dense silently; `ditrun generate` turns it on.
  bool fallback = false;
  // Denoising steps of the run (PARO's timestep buckets need step / num_steps); 0 = unknown. The denoise
  // loop sets it.
  int num_steps = 0;
  // Sees every transformer attention call before it runs (`ditrun calibrate`); not owned.
  sattn::AttentionObserver* observer = nullptr;

  // The one decision: the method of `layer` at `step` before the fallback. An unknown step (-1) counts as
  // a warm-up step.
  sattn::MethodSpec method_for(int step, int layer) const;
  // The method call `p` runs: p.method (method_for(p.step_index, p.layer_index), with p's tokens and
  // tensors set), or dense when `fallback` is on and dense_fallback_reason(ctx, p) gives a reason. The
  // decision is made once per method, token layout and tensor kind (shared by copies of this policy) and
  // logged once at info level: "ditrun: attention: <method> falls back to dense on <layers> at HxW tokens:
  // <reason>".
  sattn::MethodSpec call_method(const rt::Context& ctx, const sattn::AttentionParams& p) const;

  // Whether any layer runs a method other than dense after the warm-up steps.
  bool any_sparse() const;
  // The distinct methods of the policy: dense first, then `method`, then the per-layer methods in layer
  // order, each once (by method_str).
  std::vector<sattn::MethodSpec> distinct_methods() const;
  // The attention work of layers [0, num_layers) at `step`: per layer, 'd' (dense), 's' (`method`) or a
  // tag of its per-layer method ('A'.. 'Z', then "<26>", ...; one tag per distinct method). Steps with
  // equal keys do the same attention work (the fallback depends only on the method and the call's shape),
  // so a CUDA graph captured at one replays the other.
  std::string dense_key(int step, int num_layers) const;
  // The layers a method runs on, for logs: "every layer", "every layer but 0,5", "layers 3,7".
  std::string layers_of(const sattn::MethodSpec& m) const;
  // "" when every layer index (dense_layers, layer_methods) is in [0, num_layers), else which is not.
  std::string layer_error(int num_layers) const;
  // For logs: "gna:window=1x8x8,stride=1x4x4,dilation=1x1x1,causal=0x0x0 after 4 dense steps, dense layers
  // 0,5, layer 3 grat:variant=B,group=1x8x8,radius=1".
  std::string describe() const;

  struct FallbackCache;
  std::shared_ptr<FallbackCache> fallback_cache = make_fallback_cache();
  static std::shared_ptr<FallbackCache> make_fallback_cache();
};

}  // namespace dit::flux
