#include "dit/flux/captured_forward.h"

#include <cstdio>

#include "ops.h"
#if DITRUN_WITH_CUDA
#include "cuda/graph.h"
#endif

namespace dit::flux {

using rt::Tensor;

struct CapturedForward::State {
  State(const FluxTransformer& m, const RopeTables& p, const AttentionPolicy& a) : model(m), pe(p), attention(a) {}
  const FluxTransformer& model;
  const RopeTables& pe;
  const AttentionPolicy attention;
  std::string warmed_key, graph_key;  // graph_step's keys
  bool enabled = false;
  int calls = 0;  // calls through the static buffers
  int graph_calls = 0;
  std::string failure;
  // What the first call was given; later calls must match it to use the buffers and the graph.
  rt::Shape img_shape;
  std::vector<Tensor> txt_given;
  // The graph's fixed inputs and outputs, in the context's dtype: x <- img, vec[i] <- branch i's vec,
  // out[i] <- forward_vec; txt[i] is branch i's text cast once.
  Tensor x;
  std::vector<Tensor> txt, vec, out;
#if DITRUN_WITH_CUDA
  rt::cuda::Graph graph;  // declared last: destroyed (after a synchronize) before the buffers it uses
#endif
};

GraphStep graph_step(const std::string& key, const std::string& warmed_key, const std::string& graph_key, bool graph_ready) {
  if (graph_ready && key == graph_key) return GraphStep::Replay;
  return key == warmed_key ? GraphStep::Capture : GraphStep::Eager;
}

CapturedForward::CapturedForward(const rt::Context& ctx, const FluxTransformer& model, const RopeTables& pe, bool enabled,
                                 const AttentionPolicy& attention)
    : s_(std::make_unique<State>(model, pe, attention)) {
  s_->enabled = DITRUN_WITH_CUDA && enabled && ctx.is_cuda() && !ctx.debug_sync();
}

CapturedForward::~CapturedForward() = default;

int CapturedForward::graph_calls() const { return s_->graph_calls; }

const std::string& CapturedForward::failure() const { return s_->failure; }

static bool same_tensor(const Tensor& a, const Tensor& b) {
  return a.raw_data() == b.raw_data() && a.shape() == b.shape() && a.strides() == b.strides() && a.dtype() == b.dtype();
}

std::vector<Tensor> CapturedForward::run(const rt::Context& ctx, const Tensor& img, const std::vector<ForwardBranch>& branches,
                                         int step_index) {
  State& s = *s_;
  CHECK(!branches.empty(), "CapturedForward::run: no branches");
  CHECK(img.dim() == 3, "CapturedForward::run: img must be [B, N, C_in], got ", img.str());
  if (s.enabled && s.calls == 0) {
    s.img_shape = img.shape();
    s.x = rt::empty(ctx, img.shape(), ctx.dtype());
    for (const ForwardBranch& b : branches) {
      s.txt_given.push_back(b.txt);
      s.txt.push_back(rt::cast(ctx, b.txt, ctx.dtype()));
      s.vec.push_back(rt::empty(ctx, b.vec.shape(), ctx.dtype()));
      s.out.push_back(rt::empty(ctx, {img.size(0), img.size(1), s.model.config().out_channels}, ctx.dtype()));
    }
  }
  bool fixed = s.enabled && s.failure.empty() && img.shape() == s.img_shape && branches.size() == s.txt_given.size();
  for (size_t i = 0; fixed && i < branches.size(); ++i)
    fixed = same_tensor(branches[i].txt, s.txt_given[i]) && branches[i].vec.shape() == s.vec[i].shape();
  if (!fixed) {
    std::vector<Tensor> outs;
    for (const ForwardBranch& b : branches) outs.push_back(s.model.forward_vec(ctx, img, s.pe, b.txt, b.vec, step_index, s.attention));
    return outs;
  }

  rt::copy_(ctx, s.x, img);
  for (size_t i = 0; i < branches.size(); ++i) rt::copy_(ctx, s.vec[i], branches[i].vec);
  // Everything forward_vec allocates dies inside the body, so a capture of it owns all its temporaries.
  auto body = [&] {
    for (size_t i = 0; i < branches.size(); ++i) {
      const Tensor y = s.model.forward_vec(ctx, s.x, s.pe, s.txt[i], s.vec[i], step_index, s.attention);
      rt::copy_(ctx, s.out[i], y);
    }
  };
  bool replayed = false;
#if DITRUN_WITH_CUDA
  const Config& c = s.model.config();
  const std::string key = s.attention.dense_key(step_index, int(c.depth + c.depth_single));
  const GraphStep what = graph_step(key, s.warmed_key, s.graph_key, s.graph.ready());
  std::string why;
  if (what == GraphStep::Eager) {
    s.warmed_key = key;
    s.graph.reset();  // another key's graph will not replay again: its memory goes back before the eager step
  }
  if (what == GraphStep::Capture) {
    s.graph_key = key;
    why = s.graph.capture(ctx, body);
  }
  if (why.empty() && what != GraphStep::Eager) why = s.graph.launch(ctx);
  replayed = why.empty() && what != GraphStep::Eager;
  if (!why.empty()) {
    s.failure = why;
    s.graph.reset();
    std::fprintf(stderr, "ditrun: the denoising step runs without a CUDA graph: %s\n", why.c_str());
  }
#endif
  if (replayed) ++s.graph_calls;
  else body();
  ++s.calls;
  std::vector<Tensor> outs;
  for (const Tensor& o : s.out) {
    outs.push_back(rt::empty(ctx, o.shape(), o.dtype()));
    rt::copy_(ctx, outs.back(), o);
  }
  return outs;
}

}  // namespace dit::flux
