// cuDNN lays q/k/v/o out as [B, H, L, D]; ours are [B, L, H, D], so the dims are permuted and the real
// strides passed (as cudnn_sdpa.cpp does). On Hopper cuDNN's FP8 forward writes an FP8 output only.
#include "sparse_attention/kernels/dense/cuda/cudnn_sdpa_fp8.h"

#include <algorithm>
#include <exception>
#include <unordered_map>
#include <vector>

#include "base/check.h"
#include "cuda/common.h"
#include "cuda/cuda_ops.h"
#include "cuda/cudnn_fe.h"
#include "cuda/device_state.h"
#include "cuda/timing.h"
#include "ops.h"

namespace sattn::kernels::cuda {

namespace fe = cudnn_frontend;

namespace {

// The scalars buffer holds, in this order, the six scale inputs and the two amax outputs the graph needs.
enum Uid : int64_t { kUidQ = 1, kUidK, kUidV, kUidO, kUidStats, kUidScalar0 = 10 };
constexpr int kScaleInputs = 6, kAmaxOutputs = 2;
constexpr float kPScale = 448.f;  // P in [0, 1] onto e4m3's range

}  // namespace

struct CudnnSdpaFp8::Impl {
  int64_t b = 0, l = 0, h = 0, d = 0;
  std::shared_ptr<fe::graph::Graph> graph;
  std::string refusal;
  int64_t plans = 0, index = -1, workspace_bytes = 0;
  bool stats = false;
  rt::Tensor scalars, workspace, stats_buffer;

  std::string build(cudnnHandle_t handle, float scale, bool with_stats);
};

// Builds the graph, with or without the softmax statistics output (an inference graph first; some cuDNN
// versions only offer FP8 plans that also write them). "" or cuDNN's reason.
std::string CudnnSdpaFp8::Impl::build(cudnnHandle_t handle, float scale, bool with_stats) {
  auto g = std::make_shared<fe::graph::Graph>();
  g->set_io_data_type(fe::DataType_t::FP8_E4M3)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  const std::vector<int64_t> dim = {b, h, l, d}, stride = {l * h * d, d, h * d, 1};
  auto operand = [&](const char* name, int64_t uid) {
    return g->tensor(fe::graph::Tensor_attributes().set_name(name).set_uid(uid).set_dim(dim).set_stride(stride));
  };
  auto scalar = [&](const char* name, int64_t i) {
    return g->tensor(fe::graph::Tensor_attributes()
                         .set_name(name)
                         .set_uid(kUidScalar0 + i)
                         .set_dim({1, 1, 1, 1})
                         .set_stride({1, 1, 1, 1})
                         .set_data_type(fe::DataType_t::FLOAT));
  };
  auto q = operand("Q", kUidQ), k = operand("K", kUidK), v = operand("V", kUidV);
  auto opts = fe::graph::SDPA_fp8_attributes().set_name("sattn_sdpa_fp8").set_generate_stats(with_stats).set_attn_scale(scale);
  auto [o, st, amax_s, amax_o] = g->sdpa_fp8(q, k, v, scalar("Descale_Q", 0), scalar("Descale_K", 1),
                                              scalar("Descale_V", 2), scalar("Descale_S", 3), scalar("Scale_S", 4),
                                              scalar("Scale_O", 5), opts);
  o->set_output(true).set_uid(kUidO).set_dim(dim).set_stride(stride).set_data_type(fe::DataType_t::FP8_E4M3);
  amax_s->set_output(true).set_uid(kUidScalar0 + kScaleInputs).set_dim({1, 1, 1, 1}).set_stride({1, 1, 1, 1})
      .set_data_type(fe::DataType_t::FLOAT);
  amax_o->set_output(true).set_uid(kUidScalar0 + kScaleInputs + 1).set_dim({1, 1, 1, 1}).set_stride({1, 1, 1, 1})
      .set_data_type(fe::DataType_t::FLOAT);
  if (with_stats) st->set_output(true).set_uid(kUidStats).set_data_type(fe::DataType_t::FLOAT);

  auto bad = [](const char* step, fe::error_t e) { return std::string("cuDNN ") + step + ": " + e.get_message(); };
  if (auto e = g->validate(); e.is_bad()) return bad("validate", e);
  if (auto e = g->build_operation_graph(handle); e.is_bad()) return bad("build_operation_graph", e);
  if (auto e = g->create_execution_plans({fe::HeurMode_t::A}); e.is_bad()) return bad("heuristics", e);
  if (auto e = g->check_support(); e.is_bad()) return bad("check_support", e);
  if (auto e = g->build_plans(fe::BuildPlanPolicy_t::ALL); e.is_bad()) return bad("build_plans", e);
  plans = std::max<int64_t>(1, g->get_execution_plan_count());
  workspace_bytes = 0;
  for (int64_t i = 0; i < plans; ++i) workspace_bytes = std::max(workspace_bytes, g->get_workspace_size_plan_at_index(i));
  graph = std::move(g);
  stats = with_stats;
  return "";
}

CudnnSdpaFp8::CudnnSdpaFp8(const rt::Context& ctx, int64_t batch, int64_t len, int64_t heads, int64_t dim, float scale,
                           const Fp8SdpaScales& s)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.b = batch, m.l = len, m.h = heads, m.d = dim;
  CHECK(ctx.is_cuda(), "CudnnSdpaFp8: needs a CUDA context");
  for (const bool stats : {false, true}) {
    try {
      m.refusal = m.build(ctx.cuda().cudnn, scale, stats);
    } catch (const std::exception& e) {
      m.refusal = std::string("cuDNN frontend threw: ") + e.what();
    }
    if (m.refusal.empty()) break;
  }
  if (!m.refusal.empty()) return;
  const std::vector<float> values = {s.descale_q, s.descale_k, s.descale_v, 1.f / kPScale, kPScale, s.scale_o, 0.f, 0.f};
  m.scalars = rt::to_device(ctx, rt::Tensor::from_vector(values, {int64_t(values.size())}), ctx.device(), rt::DType::F32);
  if (m.workspace_bytes > 0) m.workspace = rt::empty(ctx, {(m.workspace_bytes + 7) / 8}, rt::DType::I64);
  if (m.stats) m.stats_buffer = rt::empty(ctx, {m.b, m.h, m.l, 1}, rt::DType::F32);
}

CudnnSdpaFp8::~CudnnSdpaFp8() = default;

const std::string& CudnnSdpaFp8::refusal() const { return impl_->refusal; }

rt::Tensor CudnnSdpaFp8::run(const rt::Context& ctx, const rt::Tensor& q8, const rt::Tensor& k8, const rt::Tensor& v8) {
  Impl& m = *impl_;
  CHECK(m.refusal.empty(), "CudnnSdpaFp8: ", m.refusal);
  const rt::Shape want = {m.b, m.l, m.h, m.d};
  for (const rt::Tensor* t : {&q8, &k8, &v8})
    CHECK(t->shape() == want && t->dtype() == rt::DType::F8E4M3 && t->is_contiguous(), "CudnnSdpaFp8: operand ",
          t->str(), ", expected contiguous f8_e4m3 ", rt::shape_str(want));
  rt::Tensor out = rt::empty(ctx, want, rt::DType::F8E4M3);
  std::unordered_map<fe::graph::Tensor_attributes::uid_t, void*> pack = {
      {kUidQ, q8.raw_data()}, {kUidK, k8.raw_data()}, {kUidV, v8.raw_data()}, {kUidO, out.raw_data()}};
  float* scalars = static_cast<float*>(m.scalars.raw_data());
  for (int i = 0; i < kScaleInputs + kAmaxOutputs; ++i) pack[kUidScalar0 + i] = scalars + i;
  if (m.stats) pack[kUidStats] = m.stats_buffer.raw_data();
  void* ws = m.workspace.defined() ? m.workspace.raw_data() : nullptr;
  cudnnHandle_t handle = ctx.cuda().cudnn;
  if (m.index < 0) {
    m.index = rt::cuda::fastest_launch(ctx.cuda().stream, m.plans, [&](int64_t i) {
      return m.graph->execute_plan_at_index(handle, pack, ws, i).is_good();
    });
    CHECK(m.index >= 0, "CudnnSdpaFp8: none of the ", m.plans, " built plans ran");
  }
  fe::error_t e = m.graph->execute_plan_at_index(handle, pack, ws, m.index);
  CHECK(e.is_good(), "CudnnSdpaFp8: execute failed: ", e.get_message());
  rt::cuda::check_launch(ctx, "attention.cudnn_sdpa_fp8");
  return out;
}

}  // namespace sattn::kernels::cuda
