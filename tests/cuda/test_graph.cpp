// The denoising step replayed as a CUDA graph (dit/flux/captured_forward.h) against the same step issued
// op by op, on a tiny random-weight Flux. The two must agree bitwise: the graph replays the very kernels
// of the eager step with the same launch configurations and the cuBLASLt/cuDNN plans the eager first
// step chose (cached by shapes, strides and alignments, which the graph's buffers share), so the same
// arithmetic runs in the same order. A CPU context must ignore the option.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "app/pipeline/denoise.h"
#include "dit/flux/captured_forward.h"
#include "harness/compare.h"
#include "harness/gpu.h"
#include "ops.h"
#include "rng.h"
#if DITRUN_WITH_CUDA
#include "cuda/graph.h"
#endif
#include "weights/name_map.h"

#include <catch2/catch.hpp>

using rt::DType;
using rt::Tensor;

namespace {

// Two heads of 64 (a head dim the cuDNN attention tests cover), one double and two single blocks, odd
// token counts: 20 image tokens (latents 8x10) and 7 text tokens.
dit::flux::Config tiny_config() {
  dit::flux::Config c;
  c.hidden_size = 128;
  c.num_heads = 2;
  c.head_dim = 64;
  c.axes_dims_rope = {16, 24, 24};
  c.depth = 1;
  c.depth_single = 2;
  c.context_dim = 48;
  c.pooled_dim = 24;
  return c;
}

constexpr int64_t kH2 = 4, kW2 = 5, kText = 7;

struct Problem {
  dit::flux::FluxTransformer model;
  Tensor latents, img_ids;
  app::FluxCond cond, neg;
  dit::sampling::Schedule schedule;
};

Tensor on(const rt::Context& ctx, const Tensor& host) { return rt::to_device(ctx, host, ctx.device(), DType::F32); }

Problem make_problem(const rt::Context& ctx, int steps) {
  auto model = dit::flux::FluxTransformer::load(weights::WeightLoader::random(ctx, 7, "transformer"), tiny_config());
  REQUIRE(model.is_ok());
  rt::TorchGenerator gen(11);
  const dit::flux::Config c = tiny_config();
  Problem p{std::move(model).value(), on(ctx, gen.randn({1, kH2 * kW2, c.in_channels})), app::latent_image_ids(kH2, kW2),
            {on(ctx, gen.randn({1, kText, c.context_dim})), on(ctx, gen.randn({1, c.pooled_dim})), app::text_ids(kText)},
            {on(ctx, gen.randn({1, kText, c.context_dim})), on(ctx, gen.randn({1, c.pooled_dim})), app::text_ids(kText)},
            dit::sampling::flux_schedule(steps, kH2 * kW2, dit::sampling::SchedulerConfig::flux_dev())};
  return p;
}

// Latents after `steps` steps, and how many of them the graph served.
std::pair<Tensor, int> denoise(const rt::Context& ctx, const Problem& p, bool graph, bool true_cfg) {
  app::DenoiseOptions o;
  o.guidance = 3.5f;
  o.cuda_graph = graph;
  if (true_cfg) {
    o.negative = &p.neg;
    o.true_cfg_scale = 2.5f;
  }
  int graph_steps = -1;
  o.graph_steps = &graph_steps;
  const Tensor out = rt::to_host(ctx, app::denoise(ctx, p.model, p.latents, p.cond, p.img_ids, p.schedule, o));
  return {out, graph_steps};
}

bool finite(const Tensor& t) {
  for (float v : t.to_vector())
    if (!std::isfinite(v)) return false;
  return true;
}

void check_graph_equals_eager(bool true_cfg) {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  const Problem p = make_problem(ctx, 4);
  const auto [eager, eager_steps] = denoise(ctx, p, false, true_cfg);
  const auto [graph, graph_steps] = denoise(ctx, p, true, true_cfg);
  CHECK(eager_steps == 0);
  // Step 1 eager (plans), step 2 captured and launched, steps 3-4 replayed; debug-sync turns graphs off.
  CHECK(graph_steps == (ctx.debug_sync() ? 0 : 3));
  REQUIRE(finite(eager));
  REQUIRE(finite(graph));
  const test::Diff moved = test::compare(eager, rt::to_host(ctx, p.latents));
  CHECK(moved.rel_l2 > 1e-3);  // the steps did change the latents
  const test::Diff d = test::compare(graph, eager);
  INFO(d.str());
  CHECK(d.max_abs == 0.0);
}

}  // namespace

TEST_CASE("graph.denoise_matches_eager", "[cuda]") { check_graph_equals_eager(false); }

TEST_CASE("graph.denoise_true_cfg_matches_eager", "[cuda]") { check_graph_equals_eager(true); }

// CapturedForward on its own: new inputs every call (the graph reads its buffers, refilled per call),
// outputs equal to forward_vec's, a call with another text tensor served eagerly, and the memory counts.
TEST_CASE("graph.captured_forward_replays_new_inputs", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  const Problem p = make_problem(ctx, 1);
  const dit::flux::RopeTables pe = p.model.rope(ctx, p.img_ids, p.cond.txt_ids);
  const rt::MemoryStats before = rt::memory_stats(ctx);
  rt::MemoryStats during;
  {
    dit::flux::CapturedForward captured(ctx, p.model, pe, true);
    rt::TorchGenerator gen(21);
    for (int call = 0; call < 4; ++call) {
      const Tensor img = on(ctx, gen.randn(p.latents.shape()));
      const Tensor t = Tensor::full({1}, 0.9f - 0.2f * float(call));
      const Tensor g = Tensor::full({1}, 3.5f);
      const std::vector<dit::flux::ForwardBranch> branches{{p.cond.txt, p.model.conditioning(ctx, t, p.cond.y, g)},
                                                           {p.neg.txt, p.model.conditioning(ctx, t, p.neg.y, g)}};
      const std::vector<Tensor> got = captured.run(ctx, img, branches, call);
      REQUIRE(got.size() == 2);
      for (size_t b = 0; b < 2; ++b) {
        const Tensor want = p.model.forward_vec(ctx, img, pe, branches[b].txt, branches[b].vec, call);
        const test::Diff d = test::compare(rt::to_host(ctx, got[b]), rt::to_host(ctx, want));
        INFO("call " << call << " branch " << b << ": " << d.str());
        CHECK(d.max_abs == 0.0);
      }
    }
    CHECK(captured.failure() == "");
    CHECK(captured.graph_calls() == (ctx.debug_sync() ? 0 : 3));
    during = rt::memory_stats(ctx);
    // Another text tensor than the first call's: not the graph's input, so this call runs eagerly.
    const Tensor other_txt = rt::empty(ctx, p.cond.txt.shape(), DType::F32);
    rt::copy_(ctx, other_txt, p.cond.txt);
    const Tensor t = Tensor::full({1}, 0.5f), g = Tensor::full({1}, 3.5f);
    const Tensor vec = p.model.conditioning(ctx, t, p.cond.y, g);
    const std::vector<Tensor> got = captured.run(ctx, p.latents, {{other_txt, vec}, {p.neg.txt, vec}}, 5);
    CHECK(test::compare(rt::to_host(ctx, got[0]), rt::to_host(ctx, p.model.forward_vec(ctx, p.latents, pe, other_txt, vec, 5)))
              .max_abs == 0.0);
    CHECK(captured.graph_calls() == (ctx.debug_sync() ? 0 : 3));
  }
  const rt::MemoryStats after = rt::memory_stats(ctx);
  std::printf("memory (bytes): before %zu, with the graph %zu (peak %zu), after %zu\n", before.in_use, during.in_use,
              during.peak, after.in_use);
  CHECK(during.peak >= during.in_use);
  CHECK(during.in_use >= before.in_use);
  CHECK(after.in_use <= during.in_use);
}

#if DITRUN_WITH_CUDA
// rt::cuda::Graph itself: replays read the buffers as they are at launch; captures that cannot be
// replayed faithfully are abandoned with a reason and leave the stream usable.
TEST_CASE("graph.capture_replays_current_buffer_contents", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::F32);
  if (ctx.debug_sync()) return;
  rt::TorchGenerator gen(41);
  const Tensor x = rt::to_ctx(ctx, gen.randn({37, 29})), y = rt::to_ctx(ctx, gen.randn({29}));
  const Tensor out = rt::empty(ctx, {37, 29}, DType::F32);
  rt::cuda::Graph graph;
  const std::string why = graph.capture(ctx, [&] { rt::copy_(ctx, out, rt::silu(ctx, rt::add(ctx, x, y))); });
  REQUIRE(why == "");
  REQUIRE(graph.ready());
  for (int k = 0; k < 3; ++k) {
    rt::copy_(ctx, x, rt::to_ctx(ctx, gen.randn({37, 29})));
    REQUIRE(graph.launch(ctx) == "");
    const Tensor want = rt::to_host(ctx, rt::silu(ctx, rt::add(ctx, x, y)));
    CHECK(test::compare(rt::to_host(ctx, out), want).max_abs == 0.0);
  }
}

TEST_CASE("graph.unreplayable_captures_are_abandoned", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::F32);
  if (ctx.debug_sync()) return;
  rt::TorchGenerator gen(42);
  const Tensor host = gen.randn({5, 11});
  const Tensor x = rt::to_ctx(ctx, host);
  const Tensor out = rt::empty(ctx, {5, 11}, DType::F32);
  rt::cuda::Graph graph;
  // A host upload inside the capture.
  std::string why = graph.capture(ctx, [&] { rt::copy_(ctx, out, rt::to_ctx(ctx, host)); });
  INFO(why);
  CHECK(why.find("upload") != std::string::npos);
  CHECK(!graph.ready());
  // A tensor made in the capture that outlives it.
  Tensor leaked;
  why = graph.capture(ctx, [&] { leaked = rt::add(ctx, x, x); });
  CHECK(why.find("outlive") != std::string::npos);
  leaked = Tensor();
  // A tensor older than the capture released inside it.
  Tensor older = rt::add(ctx, x, x);
  why = graph.capture(ctx, [&] {
    const Tensor gone = std::move(older);
    rt::copy_(ctx, out, gone);
  });
  CHECK(why.find("before the capture") != std::string::npos);
  CHECK(!graph.ready());
  // The stream still runs eager work.
  rt::copy_(ctx, out, rt::add(ctx, x, x));
  CHECK(test::compare(rt::to_host(ctx, out), rt::add(test::cpu_context(), host, host)).max_abs == 0.0);
}

TEST_CASE("graph.debug_sync_turns_graphs_off", "[cuda]") {
  DITRUN_GPU_OR_SKIP(shared, DType::BF16);
  rt::ContextOptions o;
  o.device = shared.device();
  o.dtype = DType::BF16;
  o.debug_sync = true;
  auto ctx = rt::Context::create(o);
  REQUIRE(ctx.is_ok());
  rt::cuda::Graph graph;
  CHECK(graph.capture(*ctx, [] {}).find("debug-sync") != std::string::npos);
  const Problem p = make_problem(*ctx, 3);
  const auto [latents, graph_steps] = denoise(*ctx, p, true, false);
  CHECK(graph_steps == 0);
  CHECK(finite(latents));
}
#endif

// On a CPU context the option changes nothing: every step runs eagerly and the latents are identical.
TEST_CASE("graph.cpu_context_ignores_the_option", "[cuda]") {
  const rt::Context& ctx = test::cpu_context();
  const Problem p = make_problem(ctx, 2);
  const auto [off, off_steps] = denoise(ctx, p, false, true);
  const auto [on_, on_steps] = denoise(ctx, p, true, true);
  CHECK(off_steps == 0);
  CHECK(on_steps == 0);
  REQUIRE(finite(off));
  CHECK(test::compare(on_, off).max_abs == 0.0);
}
