#include "sparse_attention/methods/structured.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <vector>

#include "base/check.h"
#include "ops.h"
#include "sparse_attention/kernels/sparse/block_sparse.h"
#include "sparse_attention/kernels/sparse/block_sparse_cpu.h"
#include "sparse_attention/kernels/sparse/block_sparse_quant.h"
#include "sparse_attention/methods/paro.h"
#include "sparse_attention/methods/plan.h"
#include "sparse_attention/methods/topk.h"
#include "sparse_attention/reference/quant_cpu.h"
#include "sparse_attention/reference/sparse_cpu.h"

#if DITRUN_WITH_CUDA
#include "cuda/device_state.h"
#include "sparse_attention/kernels/sparse/cuda/topk_plan.h"
#include "sparse_attention/reference/cuda/dense_cuda.h"
#endif

namespace sattn {

namespace {

enum class Executor { CpuLayout, CpuMasked, CpuQuant, BlockSparse, BlockSparseQuant, CudaMasked, None };

// The executor for a structured call; *why says why the block-sparse kernel was passed over, or (None)
// why nothing runs.
Executor choose(const AttentionParams& p, const BlockLayout& layout, std::string* why) {
  const bool cpu = p.q.device().is_cpu();
  if (p.kernel == DenseKernel::Cudnn) {
    *why = "cuDNN runs plain dense calls only; this call has method " + method_str(p.method) +
           (p.method.is_dense() ? " with padded text" : "");
    return Executor::None;
  }
  const bool quant = p.method.quant != AttnQuant::None;
  // A PARO layout's masks are data, not a rule: the masked references (which evaluate the rule) cannot run it.
  const bool paro = p.method.paro != nullptr;
  if (cpu) {
    if (p.kernel == DenseKernel::Reference && !paro) return Executor::CpuMasked;
    return quant ? Executor::CpuQuant : Executor::CpuLayout;
  }
  if (p.kernel == DenseKernel::Auto) {
    *why = quant ? kernels::block_sparse_quant_refusal(p, layout, p.method.quant) : kernels::block_sparse_refusal(p, layout);
    if (why->empty()) return quant ? Executor::BlockSparseQuant : Executor::BlockSparse;
  }
  if (paro) {
    *why = "paro runs on the block-sparse kernels only: " + (why->empty() ? std::string("kernel = reference") : *why);
    return Executor::None;
  }
  if (layout.seq_len <= kMaskedDenseMaxTokens) return Executor::CudaMasked;
  *why = (why->empty() ? std::string() : *why + "; ") + "the masked dense reference takes at most " +
         std::to_string(kMaskedDenseMaxTokens) + " tokens, this call has " + std::to_string(layout.seq_len);
  return Executor::None;
}

#if DITRUN_WITH_CUDA
std::string layout_key(const MethodSpec& m, const TokenLayout& t) {
  char buf[160];
  std::snprintf(buf, sizeof buf, " grid=%lldx%lldx%lld text=%lld/%lld/%d tiles=%lldx%lld", (long long)t.grid[0],
                (long long)t.grid[1], (long long)t.grid[2], (long long)t.text_len, (long long)t.valid_text(),
                int(t.text_before), (long long)kernels::kBlockSparseQTile, (long long)kernels::kBlockSparseKvTile);
  return "sattn.layout " + method_str(m) + buf;
}

// The explicit mask as an additive bias [H, L, L] (a broadcast view of one [L, L] matrix) on the dense
// CUDA reference, which gives fully masked rows zeros.
rt::Tensor cuda_masked(const rt::Context& ctx, const AttentionParams& p, const MaskRule& rule) {
  const int64_t len = rule.tokens.seq_len();
  std::vector<float> bias(size_t(len * len));
  for (int64_t i = 0; i < len; ++i)
    for (int64_t j = 0; j < len; ++j) bias[size_t(i * len + j)] = allowed(rule, i, j) ? 0.f : -INFINITY;
  AttentionParams d = p;
  d.tokens = TokenLayout{};
  d.method = MethodSpec{};
  d.kernel = DenseKernel::Reference;
  d.bias = rt::to_ctx(ctx, rt::Tensor::from_vector(bias, {1, len, len})).expand({p.q.size(2), len, len});
  return reference::dense_attention_cuda(ctx, d);
}
#endif

// A dynamic method needs no token layout: without one, the call's tokens are a plain sequence (one text
// segment of Lq valid tokens, so that the dense rule allows every key).
MaskRule dynamic_rule(const AttentionParams& p) {
  MaskRule rule = p.method.for_tokens(p.tokens);
  if (rule.tokens.seq_len() == 0) {
    rule.tokens = TokenLayout{};
    rule.tokens.text_len = p.q.size(1);
  }
  return rule;
}

std::string padded_text_error(const MaskRule& rule) {
  if (rule.tokens.valid_text() == rule.tokens.text_len) return "";
  return "padded text is not supported (the critical tiles carry no element mask); the text has " +
         std::to_string(rule.tokens.valid_text()) + " valid of " + std::to_string(rule.tokens.text_len) + " tokens";
}

float softmax_scale(const AttentionParams& p) { return p.scale != 0.f ? p.scale : 1.f / std::sqrt(float(p.q.size(3))); }

// A dynamic call's layout without its lists: tiles, sequence, the call's batch and heads, the rule.
BlockLayout dynamic_shape(const AttentionParams& p, const MaskRule& rule) {
  BlockLayout l;
  l.q_tile = kernels::kBlockSparseQTile, l.kv_tile = kernels::kBlockSparseKvTile;
  l.seq_len = rule.tokens.seq_len(), l.batch = p.q.size(0), l.heads = p.q.size(2);
  l.rule = rule;
  return l;
}

// The stand-in layout of a dynamic method (structured.h): the first `count` key tiles of every query tile.
BlockLayout dynamic_stand_in(const MethodSpec& m, const MaskRule& rule) {
  BlockLayout l;
  l.q_tile = kernels::kBlockSparseQTile, l.kv_tile = kernels::kBlockSparseKvTile;
  l.seq_len = rule.tokens.seq_len();
  l.rule = rule;
  std::vector<int32_t> first(size_t(sla_critical_count(m.sla, l.num_kv_tiles())));
  for (size_t i = 0; i < first.size(); ++i) first[i] = int32_t(i);
  for (int64_t e = 0; e < l.entries(); ++e) append_entry(l, first, {});
  if (l.entries() == 0) l.full_offsets = l.partial_offsets = {0};
  return l;
}

// SLA, training-free (no projection weights reach attention()): top-k block-sparse softmax attention over
// the critical tiles, planned per call from q and k; marginal tiles are skipped (methods/topk.h).
rt::Tensor dynamic_attention(const rt::Context& ctx, const AttentionParams& p) {
  const MaskRule rule = structured_rule(p);
  CHECK(p.kernel != DenseKernel::Cudnn, "attention ", method_str(p.method), ": cuDNN runs plain dense calls only");
  if (p.q.device().is_cpu()) {
    const SlaTiles tiles = plan_sla(ctx, p.q, p.k, softmax_scale(p), p.method.sla, rule, kernels::kBlockSparseQTile,
                                    kernels::kBlockSparseKvTile);
    return kernels::block_sparse_attention_cpu(ctx, p, tiles.layout);
  }
#if DITRUN_WITH_CUDA
  const BlockLayout shape = dynamic_shape(p, rule);
  const std::string why = kernels::block_sparse_refusal(p, shape);
  CHECK(why.empty(), "attention ", method_str(p.method), " cannot run q ", p.q.str(),
        ": on a GPU it runs the block-sparse kernel only: ", why);
  const kernels::cuda::UploadedLayout lists = kernels::cuda::plan_topk(
      ctx, p.q, p.k, softmax_scale(p), sla_critical_count(p.method.sla, shape.num_kv_tiles()), shape);
  return kernels::cuda::block_sparse_attention_planned(ctx, p, shape, lists);
#else
  CHECK(false, "attention: CUDA tensors in a build without the CUDA backend");
  return {};
#endif
}

std::string describe_dynamic(const AttentionParams& p) {
  const MaskRule rule = dynamic_rule(p);
  const std::string name = method_str(p.method) + ": ";
  if (p.kernel == DenseKernel::Cudnn) return "cannot run: " + name + "cuDNN runs plain dense calls only";
  if (const std::string bad = padded_text_error(rule); !bad.empty()) return "cannot run: " + name + bad;
  const BlockLayout shape = dynamic_shape(p, rule);
  const int64_t nk = shape.num_kv_tiles();
  const std::string what = "dynamic top-k, " + std::to_string(sla_critical_count(p.method.sla, nk)) + " of " +
                           std::to_string(nk) + " key tiles per query tile" +
                           (p.method.sla.marginal > 0 ? "; marginal tiles skipped (no SLA projection weights)" : "");
  if (p.q.device().is_cpu()) return name + "cpu block-sparse (" + what + ")";
  const std::string why = kernels::block_sparse_refusal(p, shape);
  if (!why.empty()) return "cannot run: " + name + "on a GPU it runs the block-sparse kernel only: " + why;
  return name + "block_sparse (" + what + ")";
}

}  // namespace

bool is_structured(const AttentionParams& p) {
  return !p.method.is_dense() || p.tokens.valid_text() < p.tokens.text_len;
}

MaskRule structured_rule(const AttentionParams& p) {
  const MaskRule rule = p.method.is_dynamic() ? dynamic_rule(p) : p.method.for_tokens(p.tokens);
  const std::string name = method_str(p.method);
  if (p.method.is_dynamic()) {
    const std::string bad = padded_text_error(rule);
    CHECK(bad.empty(), "attention ", name, ": ", bad);
  }
  const std::string why = rule_error(rule);
  CHECK(why.empty(), "attention ", name, ": ", why);
  if (p.method.paro) {
    const ParoPlan& plan = p.method.paro->plan();
    const std::string misfit = paro_tokens_error(plan, rule.tokens);
    CHECK(misfit.empty(), "attention ", name, ": ", misfit);
    CHECK(p.layer_index < plan.layers, "attention ", name, ": layer ", p.layer_index,
          " is outside the plan's ", plan.layers, " layers (", plan.describe(), ")");
    CHECK(p.q.size(2) == plan.heads && p.q.size(3) == plan.head_dim, "attention ", name, ": ",
          paro_model_error(plan, plan.layers, p.q.size(2), p.q.size(3)));
  }
  CHECK(p.q.size(1) == rule.tokens.seq_len() && p.k.size(1) == rule.tokens.seq_len(), "attention ", name, ": q ",
        p.q.str(), " and k ", p.k.str(), " must hold the token layout's ", rule.tokens.seq_len(),
        " tokens (grid + text)");
  CHECK(!p.bias.defined() && p.mask == MaskKind::None, "attention ", name,
        ": a structured call takes no bias or causal mask (the method is the mask)");
  return rule;
}

std::shared_ptr<const BlockLayout> structured_layout(const rt::Context& ctx, const AttentionParams& p) {
  const MaskRule rule = structured_rule(p);
  // An unknown layer (-1: descriptions, `ditrun backends`) shows layer 0's layout.
  if (p.method.paro)
    return p.method.paro->layout(p.method.paro->bucket(p.step_index, p.num_steps), std::max(p.layer_index, 0), rule);
  auto make = [&] {
    if (p.method.is_dynamic()) return std::make_shared<const BlockLayout>(dynamic_stand_in(p.method, rule));
    return std::make_shared<const BlockLayout>(plan(rule, kernels::kBlockSparseQTile, kernels::kBlockSparseKvTile));
  };
#if DITRUN_WITH_CUDA
  if (ctx.is_cuda()) {
    rt::cuda::DeviceState& st = ctx.cuda();
    const std::string key = layout_key(p.method, rule.tokens);
    std::lock_guard<std::mutex> lock(st.plans_mu);
    auto it = st.plans.find(key);
    if (it != st.plans.end()) return std::static_pointer_cast<const BlockLayout>(it->second);
    std::shared_ptr<const BlockLayout> l = make();
    st.plans[key] = std::const_pointer_cast<BlockLayout>(l);
    return l;
  }
#endif
  return make();
}

#if DITRUN_WITH_CUDA
// The layout's device copy, made once per layout and kept in the plan cache beside it: an upload per call
// would synchronize with the stream, recompute the partial-tile masks and make CUDA graph capture fail.
static std::shared_ptr<const kernels::cuda::UploadedLayout> uploaded_layout(const rt::Context& ctx,
                                                                            const AttentionParams& p,
                                                                            const BlockLayout& layout) {
  rt::cuda::DeviceState& st = ctx.cuda();
  std::string key = layout_key(MethodSpec{layout.rule}, layout.rule.tokens) + "/uploaded";
  if (p.method.paro)  // one layout per (bucket, layer) of the plan
    key += " paro " + p.method.paro->id() + " bucket " +
           std::to_string(p.method.paro->bucket(p.step_index, p.num_steps)) + " layer " + std::to_string(std::max(p.layer_index, 0));
  std::lock_guard<std::mutex> lock(st.plans_mu);
  auto it = st.plans.find(key);
  if (it != st.plans.end()) return std::static_pointer_cast<const kernels::cuda::UploadedLayout>(it->second);
  auto u = std::make_shared<kernels::cuda::UploadedLayout>(kernels::cuda::upload_layout(ctx, layout));
  st.plans[key] = u;
  return u;
}
#endif

rt::Tensor structured_attention(const rt::Context& ctx, const AttentionParams& p) {
  if (p.method.is_dynamic()) return dynamic_attention(ctx, p);
  const std::shared_ptr<const BlockLayout> layout = structured_layout(ctx, p);
  std::string why;
  const Executor e = choose(p, *layout, &why);
  CHECK(e != Executor::None, "attention ", method_str(p.method), " cannot run q ", p.q.str(), ": ", why);
  switch (e) {
    case Executor::CpuLayout: return kernels::block_sparse_attention_cpu(ctx, p, *layout);
    case Executor::CpuMasked: return reference::masked_attention_cpu(ctx, p, layout->rule);
    case Executor::CpuQuant: return reference::quant_attention_cpu(ctx, p, *layout, p.method.quant);
#if DITRUN_WITH_CUDA
    case Executor::BlockSparse: {
      const auto uploaded = uploaded_layout(ctx, p, *layout);
      return kernels::cuda::block_sparse_attention(ctx, p, *layout, uploaded.get());
    }
    case Executor::BlockSparseQuant: {
      const auto uploaded = uploaded_layout(ctx, p, *layout);
      return kernels::cuda::block_sparse_attention_quant(ctx, p, *layout, p.method.quant, uploaded.get());
    }
    case Executor::CudaMasked: return cuda_masked(ctx, p, layout->rule);
#endif
    default: break;
  }
  CHECK(false, "attention: CUDA tensors in a build without the CUDA backend");
  return {};
}

// Which of the bf16 block-sparse kernels runs the call, and why the wgmma one was passed over if it was.
static std::string sparse_kernel_note(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& layout) {
#if DITRUN_WITH_CUDA
  std::string why;
  const std::optional<SparseKernel> k = kernels::cuda::select_block_sparse_kernel(ctx, p, layout, &why);
  if (!k) return " (cannot run: " + why + ")";
  const char* name = *k == SparseKernel::Sm90     ? "sm90 wgmma"
                     : *k == SparseKernel::Sm90Ws ? "sm90ws warp-specialized wgmma"
                                                  : "sm80 mma.sync";
  return std::string(" ") + name + (why.empty() ? "" : " (wgmma passed over: " + why + ")");
#else
  (void)ctx, (void)p, (void)layout;
  return "";
#endif
}

// Which quantized kernel runs (select_block_sparse_quant_kernel, the dispatch's rule) and, on Hopper, what it
// buys against the bf16 kernel (docs/performance.md, the sweeps of sessions 24 and 25: the warp-specialized
// FP8 P·V kernel at 1.60-2.06x the bf16 kernel's speed, 1.21-2.02x with its pre-pass; session 14: the wgmma
// INT8 one at 0.7-0.9x).
static std::string quant_kernel_note(const rt::Context& ctx, const AttentionParams& p) {
#if DITRUN_WITH_CUDA
  std::string why;
  const std::optional<SparseKernel> k =
      kernels::cuda::select_block_sparse_quant_kernel(ctx, p.sparse_kernel, p.method.quant, &why);
  if (!k) return " (cannot run: " + why + ")";
  switch (*k) {
    case SparseKernel::Sm90Ws:
      return " sm90ws warp-specialized wgmma (on Hopper 1.6-2.1x the bf16 sm90ws kernel's speed, 1.2-2.0x with the "
             "quantization pre-pass)";
    case SparseKernel::Sm90:
      return " sm90 wgmma (on Hopper 1.1-1.5x the time of the bf16 sm90ws kernel: quant= gives its numerics, not "
             "speed)";
    default: return " sm80 mma.sync" + (why.empty() ? std::string() : " (wgmma passed over: " + why + ")");
  }
#else
  (void)ctx, (void)p;
  return "";
#endif
}

std::string describe_structured(const rt::Context& ctx, const AttentionParams& p) {
  if (p.method.is_dynamic()) return describe_dynamic(p);
  if (const std::string bad = rule_error(p.method.for_tokens(p.tokens)); !bad.empty())
    return "cannot run: " + method_str(p.method) + ": " + bad;
  const std::shared_ptr<const BlockLayout> layout = structured_layout(ctx, p);
  std::string why;
  const Executor e = choose(p, *layout, &why);
  char density[64];
  std::snprintf(density, sizeof density, "tile density %.3f", layout->tile_density());
  const std::string name = method_str(p.method) + ": ";
  switch (e) {
    case Executor::CpuLayout: return name + "cpu block-sparse (" + density + ")";
    case Executor::CpuMasked: return name + "cpu masked dense reference";
    case Executor::CpuQuant: return name + "cpu quantized block-layout reference (" + density + ")";
    case Executor::BlockSparse: return name + "block_sparse" + sparse_kernel_note(ctx, p, *layout) + " (" + density + ")";
    case Executor::BlockSparseQuant: return name + "block_sparse_quant" + quant_kernel_note(ctx, p) + " (" + density + ")";
    case Executor::CudaMasked:
      return name + "cuda masked dense reference" + (why.empty() ? "" : " (block-sparse passed over: " + why + ")");
    case Executor::None: break;
  }
  return "cannot run: " + why;
}

}  // namespace sattn
