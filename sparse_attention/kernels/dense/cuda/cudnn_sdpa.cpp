// cuDNN describes q/k/v/o as [B, H, L, D]; ours are [B, L, H, D] views, so the dims are permuted and the
// real strides passed: slices of a fused qkv tensor run without copies. A graph bakes in dtype, sizes,
// strides, mask, bias layout and scale, so all of them are in the cache key (leaving strides out of a
// key is a known source of silently wrong results in other cuDNN integrations). Refusals are cached too,
// so auto selection asks cuDNN once per layout.
#include "sparse_attention/kernels/dense/cuda/cudnn_sdpa.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "cuda/common.h"
#include "cuda/cuda_ops.h"
#include "cuda/cudnn_fe.h"
#include "cuda/device_state.h"
#include "cuda/timing.h"

namespace sattn::kernels::cuda {

namespace fe = cudnn_frontend;

namespace {

// cuDNN documents head dims up to 256 on sm_90; ditrun's GPU tests cover 64 and 128 only, so larger heads
// take the reference until a test covers them.
constexpr int64_t kMaxHeadDim = 128;
// cuDNN's SDPA kernels load operands with 16-byte vectors/TMA: pointers and strides must be multiples.
constexpr int64_t kAlignBytes = 16;
enum Uid : int64_t { kUidQ = 1, kUidK, kUidV, kUidO, kUidBias };

// An operand as cuDNN sees it, [B, H, L, D] (or the bias's [B or 1, H or 1, Lq, Lk]).
struct Operand {
  std::vector<int64_t> dim, stride;
  bool copy = false;  // the view breaks the alignment: the run passes a packed (q/k/v) or padded (bias) copy
};

struct Layout {
  rt::DType dtype = rt::DType::BF16;
  Operand q, k, v, o, bias;
  bool has_bias = false;
  bool causal = false;
  float scale = 1.f;
};

struct Plan {
  std::shared_ptr<fe::graph::Graph> graph;  // null when cuDNN refused the layout
  std::string refusal;
  int64_t workspace_bytes = 0;  // enough for every built plan
  int64_t plan_count = 1;
  int64_t index = -1;  // the plan that runs; -1 until the candidates were timed on the first call
};

// Problems with at least this much work per batch item (H·Lq·Lk·D) build every plan cuDNN offers and time
// them once: the heuristic's first plan ran ~5-10% under PyTorch's cuDNN SDPA at Flux 2048x2048 sizes.
// Smaller ones (T5, CLIP) take the first plan; building all costs more than it saves there. The batch is
// left out so that which path a model takes does not change with the batch size: counted in, T5-XXL's
// biased 512-token attention (2^30 per item) crossed the line at batch 4 and built every plan.
constexpr double kTuneMinWork = 4294967296.0;  // 2^32

double work_per_item(const Layout& l) {
  return double(l.q.dim[1]) * double(l.q.dim[2]) * double(l.k.dim[2]) * double(l.q.dim[3]);
}

// Dims of extent 1 are never stepped over; they get the packed stride (next stride × next extent), so a
// stride-0 or arbitrary stride of a broadcast or sliced dim never reaches cuDNN.
void pack_unit_strides(Operand& o) {
  for (size_t d = o.dim.size() - 1; d-- > 0;)
    if (o.dim[d] == 1) o.stride[d] = o.stride[d + 1] * o.dim[d + 1];
}

int64_t elem_bytes(rt::DType t) { return int64_t(rt::dtype_size(t)); }

// Pointer and every stride of an extent > 1 are 16-byte multiples, and the last dim is dense.
bool aligned(const rt::Tensor& t) {
  if (reinterpret_cast<uintptr_t>(t.raw_data()) % kAlignBytes != 0) return false;
  const int64_t e = elem_bytes(t.dtype());
  for (int64_t d = 0; d < t.dim(); ++d) {
    const int64_t s = t.strides()[size_t(d)];
    if (t.size(d) <= 1) continue;
    if (d == t.dim() - 1 ? s != 1 : (s == 0 || s * e % kAlignBytes != 0)) return false;
  }
  return true;
}

// q/k/v/o [B, L, H, D] -> cuDNN's [B, H, L, D] with the view's strides, or a packed copy's if misaligned.
Operand bhld(const rt::Tensor& t) {
  Operand o;
  o.dim = {t.size(0), t.size(2), t.size(1), t.size(3)};
  o.copy = !aligned(t);
  const rt::Shape s = o.copy ? rt::contiguous_strides(t.shape()) : t.strides();
  o.stride = {s[0], s[2], s[1], s[3]};
  pack_unit_strides(o);
  return o;
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// The bias as [Bb, Hb, Lq, Lk], where a batch or head dimension the bias does not vary over (absent,
// extent 1 or stride 0) becomes extent 1: cuDNN broadcasts dims of extent 1.
rt::Tensor bias4(const AttentionParams& p) {
  rt::Tensor b = p.bias.dim() == 3 ? p.bias.unsqueeze(0) : p.bias;
  for (int64_t d = 0; d < 2; ++d)
    if (b.size(d) > 1 && b.strides()[size_t(d)] == 0) b = b.slice(d, 0, 1);
  return b;
}

Operand bias_operand(const rt::Tensor& b4, rt::DType dtype) {
  Operand o;
  o.dim = b4.shape();
  o.copy = b4.dtype() != dtype || !aligned(b4);
  if (!o.copy) {
    o.stride = b4.strides();
    pack_unit_strides(o);
    return o;
  }
  // Rows padded to 16 bytes, so every row starts aligned whatever Lk is.
  const int64_t ld = round_up(o.dim[3], kAlignBytes / elem_bytes(dtype));
  o.stride = {o.dim[1] * o.dim[2] * ld, o.dim[2] * ld, ld, 1};
  return o;
}

Layout layout_of(const AttentionParams& p) {
  Layout l;
  l.dtype = p.q.dtype();
  l.q = bhld(p.q);
  l.k = bhld(p.k);
  l.v = bhld(p.v);
  const int64_t b = p.q.size(0), lq = p.q.size(1), h = p.q.size(2), dv = p.v.size(3);
  l.o.dim = {b, h, lq, dv};
  l.o.stride = {lq * h * dv, dv, h * dv, 1};
  l.has_bias = p.bias.defined();
  if (l.has_bias) l.bias = bias_operand(bias4(p), l.dtype);
  l.causal = p.mask == MaskKind::Causal;
  l.scale = p.scale != 0.f ? p.scale : 1.f / std::sqrt(float(p.q.size(3)));
  return l;
}

std::string key_of(const Layout& l) {
  std::ostringstream os;
  os << "sattn.cudnn_sdpa " << rt::dtype_name(l.dtype);
  auto put = [&](const char* name, const Operand& o) {
    os << ' ' << name << rt::shape_str(o.dim) << rt::shape_str(o.stride);
  };
  put("q", l.q);
  put("k", l.k);
  put("v", l.v);
  put("o", l.o);
  if (l.has_bias) put("bias", l.bias);
  uint32_t scale_bits = 0;
  std::memcpy(&scale_bits, &l.scale, sizeof scale_bits);
  os << " causal=" << l.causal << " scale=" << scale_bits;
  return os.str();
}

fe::DataType_t fe_type(rt::DType t) { return t == rt::DType::F16 ? fe::DataType_t::HALF : fe::DataType_t::BFLOAT16; }

std::shared_ptr<Plan> build(cudnnHandle_t handle, const Layout& l) {
  auto plan = std::make_shared<Plan>();
  auto g = std::make_shared<fe::graph::Graph>();
  const fe::DataType_t io = fe_type(l.dtype);
  g->set_io_data_type(io).set_intermediate_data_type(fe::DataType_t::FLOAT).set_compute_data_type(fe::DataType_t::FLOAT);
  auto tensor = [&](const char* name, Uid uid, const Operand& o) {
    return g->tensor(
        fe::graph::Tensor_attributes().set_name(name).set_uid(uid).set_dim(o.dim).set_stride(o.stride).set_data_type(io));
  };
  auto q = tensor("Q", kUidQ, l.q), k = tensor("K", kUidK, l.k), v = tensor("V", kUidV, l.v);
  auto opts = fe::graph::SDPA_attributes().set_name("sattn_sdpa").set_generate_stats(false).set_attn_scale(l.scale);
  // Top-left causal: query i sees keys j <= i, the CPU reference's definition also when Lq != Lk.
  if (l.causal) opts.set_diagonal_alignment(fe::DiagonalAlignment_t::TOP_LEFT).set_diagonal_band_right_bound(0);
  if (l.has_bias) opts.set_bias(tensor("Bias", kUidBias, l.bias));
  auto outputs = g->sdpa(q, k, v, opts);
  outputs[0]->set_output(true).set_uid(kUidO).set_dim(l.o.dim).set_stride(l.o.stride).set_data_type(io);

  auto failed = [&](const char* step, fe::error_t e) {
    plan->refusal = std::string("cuDNN ") + step + ": " + e.get_message();
    return plan;
  };
  if (auto e = g->validate(); e.is_bad()) return failed("validate", e);
  if (auto e = g->build_operation_graph(handle); e.is_bad()) return failed("build_operation_graph", e);
  if (auto e = g->create_execution_plans({fe::HeurMode_t::A}); e.is_bad()) return failed("heuristics", e);
  if (auto e = g->check_support(); e.is_bad()) return failed("check_support", e);
  const bool tune = work_per_item(l) >= kTuneMinWork;
  if (!tune || g->build_plans(fe::BuildPlanPolicy_t::ALL).is_bad()) {
    if (auto e = g->build_plans(fe::BuildPlanPolicy_t::HEURISTICS_CHOICE); e.is_bad()) return failed("build_plans", e);
    int64_t ws = 0;
    if (auto e = g->get_workspace_size(ws); e.is_bad()) return failed("workspace size", e);
    plan->workspace_bytes = ws;
    plan->graph = std::move(g);
    return plan;
  }
  plan->plan_count = std::max<int64_t>(1, g->get_execution_plan_count());
  for (int64_t i = 0; i < plan->plan_count; ++i)
    plan->workspace_bytes = std::max(plan->workspace_bytes, g->get_workspace_size_plan_at_index(i));
  if (plan->plan_count == 1) plan->index = 0;
  plan->graph = std::move(g);
  return plan;
}

// The cached plan of p's layout, built on first use. Building holds the lock: plans are built once per
// layout and the stream is the context's alone, so nothing waits for long. Building is not capturable
// (cuDNN may allocate and synchronize): a layout first met during a CUDA graph capture is refused, not
// cached, and the capture discarded, so the eager run that replaces it builds the plan.
std::shared_ptr<Plan> plan_for(const rt::Context& ctx, const Layout& l) {
  rt::cuda::DeviceState& st = ctx.cuda();
  const std::string key = key_of(l);
  std::lock_guard<std::mutex> lock(st.plans_mu);
  auto it = st.plans.find(key);
  if (it != st.plans.end()) return std::static_pointer_cast<Plan>(it->second);
  auto plan = std::make_shared<Plan>();
  if (st.capturing) {
    plan->refusal = "cuDNN plans are not built during a CUDA graph capture";
    if (st.capture_refusal.empty()) st.capture_refusal = "attention layout " + key + " first met during the capture";
    return plan;
  }
  try {
    plan = build(st.cudnn, l);
  } catch (const std::exception& e) {
    plan->refusal = std::string("cuDNN frontend threw: ") + e.what();
  }
  st.plans.emplace(key, plan);
  return plan;
}

// Checks that need no cuDNN call, each with the reason a user can act on.
std::string static_refusal(const AttentionParams& p) {
  const rt::DType t = p.q.dtype();
  if (t != rt::DType::BF16 && t != rt::DType::F16)
    return std::string("cuDNN's fused attention takes bf16 or f16, got ") + rt::dtype_name(t);
  const int64_t d = p.q.size(3), dv = p.v.size(3);
  if (d != dv) return "cuDNN needs equal q/k and v head dims, got " + std::to_string(d) + " and " + std::to_string(dv);
  if (d % 8 != 0 || d > kMaxHeadDim)
    return "head dim " + std::to_string(d) + ": cuDNN runs multiples of 8 up to " + std::to_string(kMaxHeadDim) + " here";
  if (p.q.numel() == 0 || p.k.numel() == 0) return "empty batch, heads or sequence";
  return "";
}

}  // namespace

std::string cudnn_sdpa_refusal(const rt::Context& ctx, const AttentionParams& p) {
  if (std::string why = static_refusal(p); !why.empty()) return why;
  return plan_for(ctx, layout_of(p))->refusal;
}

rt::Tensor cudnn_sdpa(const rt::Context& ctx, const AttentionParams& p) {
  CHECK(static_refusal(p).empty(), "cudnn_sdpa: ", static_refusal(p));
  const Layout l = layout_of(p);
  const std::shared_ptr<Plan> plan = plan_for(ctx, l);
  CHECK(plan->graph, "cudnn_sdpa: q ", p.q.str(), " k ", p.k.str(), " v ", p.v.str(), ": ", plan->refusal);

  // Operands whose views break the alignment run on copies laid out as the layout says.
  auto packed = [&](const rt::Tensor& t, const Operand& o) {
    if (!o.copy) return t;
    rt::Tensor c = rt::cuda::empty(ctx, t.shape(), t.dtype());
    rt::cuda::copy(ctx, c, t);
    return c;
  };
  const rt::Tensor q = packed(p.q, l.q), k = packed(p.k, l.k), v = packed(p.v, l.v);
  rt::Tensor bias;
  if (l.has_bias) {
    bias = bias4(p);
    if (l.bias.copy) {
      const rt::Shape& dim = l.bias.dim;
      rt::Tensor padded = rt::cuda::empty(ctx, {dim[0], dim[1], dim[2], l.bias.stride[2]}, l.dtype);
      padded = padded.slice(3, 0, dim[3]);
      rt::cuda::copy(ctx, padded, bias);
      bias = padded;
    }
  }
  const int64_t b = p.q.size(0), lq = p.q.size(1), h = p.q.size(2), dv = p.v.size(3);
  rt::Tensor out = rt::cuda::empty(ctx, {b, lq, h, dv}, l.dtype);
  rt::Tensor workspace;
  if (plan->workspace_bytes > 0) workspace = rt::cuda::empty(ctx, {(plan->workspace_bytes + 7) / 8}, rt::DType::I64);

  std::unordered_map<fe::graph::Tensor_attributes::uid_t, void*> pack = {
      {kUidQ, q.raw_data()}, {kUidK, k.raw_data()}, {kUidV, v.raw_data()}, {kUidO, out.raw_data()}};
  if (l.has_bias) pack[kUidBias] = bias.raw_data();
  void* ws = workspace.defined() ? workspace.raw_data() : nullptr;
  cudnnHandle_t handle = ctx.cuda().cudnn;
  if (plan->index < 0 && !ctx.cuda().capturing) {  // time every built plan once on these operands; keep the fastest
    plan->index = rt::cuda::fastest_launch(ctx.cuda().stream, plan->plan_count, [&](int64_t i) {
      return plan->graph->execute_plan_at_index(handle, pack, ws, i).is_good();
    });
    CHECK(plan->index >= 0, "cudnn_sdpa: none of the ", plan->plan_count, " built plans ran for q ", p.q.str());
  }
  // Timing cannot run inside a CUDA graph capture: the first plan, untimed, and the next eager call times.
  const int64_t index = std::max<int64_t>(plan->index, 0);
  fe::error_t e = plan->plan_count > 1 || index > 0 ? plan->graph->execute_plan_at_index(handle, pack, ws, index)
                                                    : plan->graph->execute(handle, pack, ws);
  if (e.is_bad() && ctx.cuda().capturing)  // abandons the capture; the eager run reports a real failure
    throw rt::cuda::CaptureError(std::string("cudnn_sdpa: execute during a CUDA graph capture: ") + e.get_message());
  CHECK(e.is_good(), "cudnn_sdpa: execute failed for q ", p.q.str(), " k ", p.k.str(), ": ", e.get_message());
  rt::cuda::check_launch(ctx, "attention.cudnn_sdpa");
  return out;
}

}  // namespace sattn::kernels::cuda
