// The single attention entry point. Every attention of every model (DiT joint attention, T5, CLIP,
// the VAE's mid-block attention) calls sattn::attention; methods and kernels live behind it.
// Shapes: q [B, Lq, H, D], k [B, Lk, H, D], v [B, Lk, H, Dv] -> out [B, Lq, H, Dv] (PyTorch order, the
// flash-attention convention). Views with any strides are accepted; the output is contiguous.
#pragma once
#include <string>
#include <string_view>

#include "context.h"
#include "sparse_attention/methods/method_spec.h"
#include "tensor.h"

namespace sattn {

struct AttentionParams;

// Sees every attention() call before it runs (`ditrun calibrate` gathers PARO statistics with one). An
// explicit object handed down with the call (AttentionParams::observer), so no global state.
class AttentionObserver {
 public:
  virtual ~AttentionObserver() = default;
  virtual void observe(const rt::Context& ctx, const AttentionParams& p) = 0;
};

enum class MaskKind {
  None,    // every query sees every key
  Causal,  // query i sees keys j <= i (CLIP's text tower)
};

// Which dense kernel runs a call. Auto: on a GPU, cuDNN's fused SDPA when it supports the call, else the
// naive CUDA reference; on the CPU, the CPU reference. Reference: the reference of the tensors' device.
// Cudnn: cuDNN's fused SDPA (GPU, bf16/f16). An explicit kernel that cannot run is a CHECK failure that
// says why (ask select_dense_kernel or describe_dense_kernel first to avoid it).
enum class DenseKernel { Auto, Cudnn, Reference };
const char* dense_kernel_name(DenseKernel k);  // "auto", "cudnn", "reference"
// "auto" | "cudnn" | "reference" -> the kernel; false (out untouched) for anything else.
bool parse_dense_kernel(std::string_view name, DenseKernel* out);

// Which block-sparse kernel runs a structured call on a GPU (kernels/sparse/block_sparse.h). Auto: the
// default (select_block_sparse_kernel says which); Sm80: the mma.sync kernel (any GPU of compute capability
// 8.0 or later); Sm90: the wgmma kernel (compute capability 9.0, a build with sm_90a code); Sm90Ws: its
// warp-specialized variant (same requirements and output bits, faster; what Auto runs on Hopper). An explicit
// kernel that cannot run is a CHECK failure that says why.
enum class SparseKernel { Auto, Sm80, Sm90, Sm90Ws };
const char* sparse_kernel_name(SparseKernel k);  // "auto", "sm80", "sm90", "sm90ws"
// "auto" | "sm80" | "sm90" | "sm90ws" -> the kernel; false (out untouched) for anything else.
bool parse_sparse_kernel(std::string_view name, SparseKernel* out);

struct AttentionParams {
  rt::Tensor q, k, v;
  float scale = 0.f;  // 0 means 1/sqrt(D); T5 passes 1 (it does not scale)
  MaskKind mask = MaskKind::None;
  // Optional additive score bias, [H, Lq, Lk] or [B, H, Lq, Lk] (T5's relative position bias).
  rt::Tensor bias;
  // Where the call sits, so per-layer and per-step policies need no global state.
  int layer_index = -1;
  int step_index = -1;
  int num_steps = -1;  // denoising steps of the run (PARO's timestep buckets); -1 = unknown
  // Forces a dense kernel (tests, benchmarks); models leave it Auto. On a structured call (below)
  // Reference forces the masked dense reference (the explicit mask) instead of the block-sparse path.
  DenseKernel kernel = DenseKernel::Auto;
  // Forces a block-sparse kernel (tests, benchmarks); models leave it Auto.
  SparseKernel sparse_kernel = SparseKernel::Auto;
  // The sequence's tokens (image/video grid, text segment and its padding; mask_rule.h) and the method.
  // The defaults (no layout, dense) are plain attention over every key. A method other than dense, or
  // a layout whose text has padding, makes the call structured: self-attention over tokens.seq_len()
  // tokens in natural order under the rule's mask, without bias or causal mask.
  TokenLayout tokens;
  MethodSpec method;
  // When set, sees the call (q, k, v, tokens, layer, step) before it runs.
  AttentionObserver* observer = nullptr;
};

// Softmax attention; softmax statistics in float32 or wider. Aborts (CHECK) on inconsistent shapes,
// which are model bugs, not user errors. The output has q's dtype and lives on q's device.
rt::Tensor attention(const rt::Context& ctx, const AttentionParams& p);

// What attention(ctx, p) runs, for logs: "cudnn_sdpa", "cuda_reference (cuDNN passed over: <why>)",
// "cpu_reference", or "cannot run: <why>" when p.kernel names a kernel that cannot run p. CHECKs shapes
// like attention().
std::string describe_dense_kernel(const rt::Context& ctx, const AttentionParams& p);

// What attention(ctx, p) runs, for any call: describe_dense_kernel's line for plain calls; for structured
// ones the method and the executor with its tile density, e.g. "gna:window=...: block_sparse (tile density
// 0.094)", "grat:...: cuda masked dense reference (block-sparse passed over: <why>)",
// "...: cpu block-sparse (tile density 0.463)", or "cannot run: <why>".
std::string describe_attention(const rt::Context& ctx, const AttentionParams& p);

}  // namespace sattn
