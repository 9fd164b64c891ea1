// conv2d through cuDNN's graph API (the header-only cudnn_frontend 1.x: graph, conv_fprop, a pointwise add for
// the bias, heuristics mode A then the fallback list). The op's contract is NCHW; bf16/f16 convolutions run
// fastest on NHWC memory, so the input and weight are transposed (rt::contiguous of a permuted view) around
// the call and the result comes back through the inverse permute. Per problem the layouts are tried in order
// until cuDNN builds one, and the built graph is cached in DeviceState::plans:
//   bf16/f16: NHWC, NHWC with channels zero-padded to multiples of 8 (only when C or O is not), NCHW;
//   f32:      NCHW, NHWC (f32 engines with tensor-core, down-converting, FFT or Winograd numerics are
//             deselected: f32 must match the CPU reference).
// Each layout is tried with the bias fused into the graph, then without it (bias added by rt::add).
// Weights are transposed per call: the largest VAE weight (512x512x3x3) is 4.7 MB, a few microseconds.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda/common.h"
#include "cuda/cuda_ops.h"
#include "cuda/cudnn_fe.h"
#include "cuda/device_state.h"
#include "ops.h"

namespace fe = cudnn_frontend;

namespace rt::cuda {

namespace {

enum class Layout : uint8_t { NHWC, NHWCPadded, NCHW };

struct ConvShape {
  int64_t n, c, h, w, o, kh, kw, stride, pad, ho, wo;
};

// A built graph and what its tensors look like to cuDNN.
struct ConvPlan {
  Layout layout = Layout::NCHW;
  bool fused_bias = false;
  int64_t c = 0, o = 0;  // channel counts as cuDNN sees them (padded for NHWCPadded)
  std::shared_ptr<fe::graph::Graph> graph;
  std::shared_ptr<fe::graph::Tensor_attributes> x, w, b, y;
  int64_t workspace = 0;
};

}  // namespace

// Engines may ask for this much scratch at most; the fastest implicit-GEMM kernels need far less.
static constexpr int64_t kMaxWorkspace = int64_t(512) << 20;

static fe::DataType_t fe_type(DType t) {
  switch (t) {
    case DType::F32: return fe::DataType_t::FLOAT;
    case DType::BF16: return fe::DataType_t::BFLOAT16;
    case DType::F16: return fe::DataType_t::HALF;
    default: CHECK(false, "conv2d: cuDNN takes f32, bf16 or f16, got ", dtype_name(t));
  }
}

static const char* layout_name(Layout l) {
  switch (l) {
    case Layout::NHWC: return "NHWC";
    case Layout::NHWCPadded: return "NHWC (channels padded to 8)";
    case Layout::NCHW: return "NCHW";
  }
  return "?";
}

static int64_t round8(int64_t v) { return (v + 7) / 8 * 8; }

// Strides of a tensor with cuDNN dims [n, c, h, w] stored in NHWC or NCHW order.
static std::vector<int64_t> strides_of(bool nhwc, int64_t c, int64_t h, int64_t w) {
  if (nhwc) return {h * w * c, 1, w * c, c};
  return {c * h * w, h * w, w, 1};
}

// Builds the graph for one layout; nullptr (with the reason appended to `why`) when cuDNN cannot run it.
static std::shared_ptr<ConvPlan> try_build(cudnnHandle_t handle, const ConvShape& s, DType dtype, Layout layout,
                                           bool fused_bias, std::string& why) {
  auto p = std::make_shared<ConvPlan>();
  p->layout = layout;
  p->fused_bias = fused_bias;
  const bool nhwc = layout != Layout::NCHW;
  p->c = layout == Layout::NHWCPadded ? round8(s.c) : s.c;
  p->o = layout == Layout::NHWCPadded ? round8(s.o) : s.o;
  const fe::DataType_t io = fe_type(dtype);
  p->graph = std::make_shared<fe::graph::Graph>();
  fe::graph::Graph& g = *p->graph;
  g.set_io_data_type(io).set_intermediate_data_type(fe::DataType_t::FLOAT).set_compute_data_type(fe::DataType_t::FLOAT);
  p->x = g.tensor(fe::graph::Tensor_attributes()
                      .set_name("x")
                      .set_dim({s.n, p->c, s.h, s.w})
                      .set_stride(strides_of(nhwc, p->c, s.h, s.w))
                      .set_data_type(io));
  p->w = g.tensor(fe::graph::Tensor_attributes()
                      .set_name("w")
                      .set_dim({p->o, p->c, s.kh, s.kw})
                      .set_stride(strides_of(nhwc, p->c, s.kh, s.kw))
                      .set_data_type(io));
  auto y = g.conv_fprop(p->x, p->w,
                        fe::graph::Conv_fprop_attributes()
                            .set_name("conv")
                            .set_padding({s.pad, s.pad})
                            .set_stride({s.stride, s.stride})
                            .set_dilation({1, 1})
                            .set_compute_data_type(fe::DataType_t::FLOAT));
  if (fused_bias) {
    // The conv result stays f32 (intermediate type) until the bias is added.
    p->b = g.tensor(fe::graph::Tensor_attributes()
                        .set_name("bias")
                        .set_dim({1, p->o, 1, 1})
                        .set_stride({p->o, 1, p->o, p->o})
                        .set_data_type(io));
    y = g.pointwise(y, p->b,
                    fe::graph::Pointwise_attributes()
                        .set_name("bias_add")
                        .set_mode(fe::PointwiseMode_t::ADD)
                        .set_compute_data_type(fe::DataType_t::FLOAT));
  }
  y->set_output(true).set_data_type(io).set_dim({s.n, p->o, s.ho, s.wo}).set_stride(strides_of(nhwc, p->o, s.ho, s.wo));
  p->y = y;

  const std::string what = std::string("\n  ") + layout_name(layout) + (fused_bias ? " + fused bias" : "") + ": ";
  auto failed = [&](const char* step, fe::error_t e) {
    why += what + step + ": " + e.get_message();
    return nullptr;
  };
  try {
    fe::error_t e = g.validate();
    if (e.is_bad()) return failed("validate", e);
    if ((e = g.build_operation_graph(handle)).is_bad()) return failed("build_operation_graph", e);
    if ((e = g.create_execution_plans({fe::HeurMode_t::A, fe::HeurMode_t::FALLBACK})).is_bad())
      return failed("create_execution_plans", e);
    if (dtype == DType::F32) {
      // Plain f32 FMA engines only: TF32 tensor cores and FFT/Winograd transforms cost accuracy.
      g.deselect_numeric_notes({fe::NumericalNote_t::TENSOR_CORE, fe::NumericalNote_t::DOWN_CONVERT_INPUTS,
                                fe::NumericalNote_t::REDUCED_PRECISION_REDUCTION, fe::NumericalNote_t::FFT,
                                fe::NumericalNote_t::WINOGRAD, fe::NumericalNote_t::WINOGRAD_TILE_4x4,
                                fe::NumericalNote_t::WINOGRAD_TILE_6x6, fe::NumericalNote_t::WINOGRAD_TILE_13x13});
    }
    g.deselect_workspace_greater_than(kMaxWorkspace);
    if ((e = g.check_support(handle)).is_bad()) return failed("check_support", e);
    if ((e = g.build_plans(handle, fe::BuildPlanPolicy_t::HEURISTICS_CHOICE)).is_bad()) return failed("build_plans", e);
    if ((e = g.get_workspace_size(p->workspace)).is_bad()) return failed("get_workspace_size", e);
  } catch (const std::exception& ex) {
    why += what + "exception: " + ex.what();
    return nullptr;
  }
  return p;
}

static std::shared_ptr<ConvPlan> find_or_build(const Context& ctx, const ConvShape& s, DType dtype, bool has_bias) {
  DeviceState& st = ctx.cuda();
  const std::string key = "conv2d|" + std::string(dtype_name(dtype)) + "|" + std::to_string(s.n) + "," +
                          std::to_string(s.c) + "," + std::to_string(s.h) + "," + std::to_string(s.w) + "|" +
                          std::to_string(s.o) + "," + std::to_string(s.kh) + "," + std::to_string(s.kw) + "|s" +
                          std::to_string(s.stride) + ",p" + std::to_string(s.pad) + (has_bias ? ",bias" : "");
  std::lock_guard<std::mutex> lock(st.plans_mu);
  auto it = st.plans.find(key);
  if (it != st.plans.end()) return std::static_pointer_cast<ConvPlan>(it->second);

  std::vector<Layout> layouts;
  if (dtype == DType::F32) {
    layouts = {Layout::NCHW, Layout::NHWC};
  } else {
    layouts = {Layout::NHWC};
    if (s.c % 8 != 0 || s.o % 8 != 0) layouts.push_back(Layout::NHWCPadded);
    layouts.push_back(Layout::NCHW);
  }
  std::string why;
  for (Layout layout : layouts) {
    for (bool fused : {true, false}) {
      if (fused && !has_bias) continue;
      if (std::shared_ptr<ConvPlan> p = try_build(st.cudnn, s, dtype, layout, fused, why)) {
        st.plans.emplace(key, p);
        return p;
      }
    }
  }
  CHECK(false, "conv2d: cuDNN ", cudnnGetVersion(), " cannot run ", dtype_name(dtype), " x [", s.n, ", ", s.c, ", ", s.h,
        ", ", s.w, "] weight [", s.o, ", ", s.c, ", ", s.kh, ", ", s.kw, "] stride ", s.stride, " padding ", s.pad,
        " in any layout:", why);
}

// bias [o] as [o, 1, 1], which broadcasts over [n, o, h, w].
static Tensor channel_vector(const Tensor& bias) { return bias.unsqueeze(1).unsqueeze(2); }

static bool aligned16(const Tensor& t) { return reinterpret_cast<uintptr_t>(t.raw_data()) % 16 == 0; }

// t [a, b, h, w] (any strides and float dtype) in cuDNN's memory order as a contiguous, 16-byte aligned
// tensor of `dtype`: [a, b, h, w] for NCHW, [rows, h, w, channels] for NHWC, where rows >= a and
// channels >= b are zero padding. t itself when it already is that.
static Tensor to_layout(const Context& ctx, const Tensor& t, bool nhwc, int64_t rows, int64_t channels, DType dtype) {
  const Tensor v = nhwc ? t.permute({0, 2, 3, 1}) : t;
  const bool padded = rows != t.size(0) || channels != t.size(1);
  if (!padded && v.dtype() == dtype && v.is_contiguous() && aligned16(v)) return v;
  Shape shape = v.shape();
  shape[0] = rows;
  shape[nhwc ? 3 : 1] = channels;
  Tensor out = cuda::empty(ctx, shape, dtype);
  if (padded) {
    cuda::fill(ctx, out, 0.f);
    cuda::copy(ctx, out.slice(0, 0, v.size(0)).slice(nhwc ? 3 : 1, 0, t.size(1)), v);
  } else {
    cuda::copy(ctx, out, v);
  }
  return out;
}

Tensor conv2d(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
              int64_t padding) {
  const DType dt = x.dtype();
  ConvShape s{};
  s.n = x.size(0), s.c = x.size(1), s.h = x.size(2), s.w = x.size(3);
  s.o = weight.size(0), s.kh = weight.size(2), s.kw = weight.size(3);
  s.stride = stride, s.pad = padding;
  s.ho = (s.h + 2 * padding - s.kh) / stride + 1;
  s.wo = (s.w + 2 * padding - s.kw) / stride + 1;
  if (s.n == 0 || s.o == 0 || s.ho <= 0 || s.wo <= 0) return cuda::empty(ctx, {s.n, s.o, s.ho, s.wo}, dt);
  if (s.c == 0) {  // an empty sum: the bias (or 0) everywhere
    Tensor out = cuda::empty(ctx, {s.n, s.o, s.ho, s.wo}, dt);
    if (bias.defined()) cuda::copy(ctx, out, channel_vector(bias).unsqueeze(0).expand(out.shape()));
    else cuda::fill(ctx, out, 0.f);
    return out;
  }

  const std::shared_ptr<ConvPlan> p = find_or_build(ctx, s, dt, bias.defined());
  const bool nhwc = p->layout != Layout::NCHW;
  const Tensor xd = to_layout(ctx, x, nhwc, s.n, p->c, dt);
  const Tensor wd = to_layout(ctx, weight, nhwc, p->o, p->c, dt);
  Tensor y = cuda::empty(ctx, nhwc ? Shape{s.n, s.ho, s.wo, p->o} : Shape{s.n, p->o, s.ho, s.wo}, dt);
  std::unordered_map<std::shared_ptr<fe::graph::Tensor_attributes>, void*> pack = {
      {p->x, xd.raw_data()}, {p->w, wd.raw_data()}, {p->y, y.raw_data()}};
  Tensor bd;
  if (p->fused_bias) {
    bd = to_layout(ctx, channel_vector(bias).unsqueeze(0), false, 1, p->o, dt);
    pack.emplace(p->b, bd.raw_data());
  }
  Tensor workspace;
  if (p->workspace > 0) workspace = cuda::empty(ctx, {(p->workspace + 7) / 8}, DType::I64);
  const fe::error_t e = p->graph->execute(ctx.cuda().cudnn, pack, workspace.defined() ? workspace.raw_data() : nullptr);
  CHECK(e.is_good(), "conv2d: cuDNN execute failed for ", x.str(), " * ", weight.str(), " (", layout_name(p->layout),
        "): ", fe::error_t(e).get_message());
  check_launch(ctx, "conv2d");

  // Back to the op's NCHW contract, dropping padded output channels.
  const Tensor nchw = nhwc ? y.slice(3, 0, s.o).permute({0, 3, 1, 2}) : y;
  if (bias.defined() && !p->fused_bias) return rt::add(ctx, nchw, channel_vector(bias));
  return rt::contiguous(ctx, nchw);
}

}  // namespace rt::cuda
