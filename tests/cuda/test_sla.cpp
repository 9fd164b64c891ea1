// SLA on the GPU, training-free form: the device planner (kernels/sparse/cuda/topk_plan.h) against the CPU
// planner (methods/topk.h), and sattn::attention with an sla method against the CPU block-layout reference
// run on the very lists the device planned. The CPU gets the values the GPU holds (the bf16-rounded inputs,
// converted back to f32). q, k, v are slices of one fused [B, L, 3, H, D] tensor (strided views).
// Inputs: randn plus a random offset vector per (batch, tile, head), so that tile means, and with them the
// pooled scores, are well apart; rows whose CPU scores still come within 1e-4 (relative to the row's largest
// score) of a tie at the critical boundary are left out of the list comparison (the GPU sums the dot
// products in another order), and at least 90% of the rows must be compared.
// Tolerance, relative L2 over the output: bf16 <= 1e-2, attention class: the kernel rounds P to bf16
// before P·V and rounds O on output (2^-9 relative each), the f32 CPU does not.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <functional>
#include <vector>

#include "harness/compare.h"
#include "cuda/sparse_kernel_skip.h"
#include "harness/gpu.h"
#include "ops.h"
#include "rng.h"
#include "sparse_attention/attention.h"
#include "sparse_attention/kernels/sparse/block_sparse.h"
#include "sparse_attention/methods/topk.h"
#include "sparse_attention/reference/sparse_cpu.h"
#if DITRUN_WITH_CUDA
#include "cuda/graph.h"
#include "sparse_attention/kernels/sparse/cuda/topk_plan.h"
#endif

#include <catch2/catch.hpp>

using rt::DType;
using rt::Tensor;
using sattn::kernels::kBlockSparseKvTile;
using sattn::kernels::kBlockSparseQTile;

namespace {

constexpr double kTol16 = 1e-2;

struct Problem {
  sattn::AttentionParams gpu, cpu;
};

// [B, L, 3, H, D] on the host: randn, plus per (batch, tile, head) offsets on q (query tiles) and k (key tiles).
Tensor fused_qkv(int64_t b_n, int64_t len, int64_t heads, int64_t d, uint64_t seed) {
  rt::TorchGenerator gen(seed);
  Tensor x = gen.randn({b_n, len, 3, heads, d});
  const int64_t nq = (len + kBlockSparseQTile - 1) / kBlockSparseQTile, nk = (len + kBlockSparseKvTile - 1) / kBlockSparseKvTile;
  const std::vector<float> oq = gen.randn({b_n, nq, heads, d}).to_vector(), ok = gen.randn({b_n, nk, heads, d}).to_vector();
  float* p = x.data<float>();
  for (int64_t b = 0; b < b_n; ++b)
    for (int64_t i = 0; i < len; ++i)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t c = 0; c < d; ++c) {
          float* row = p + (b * len + i) * 3 * heads * d;
          row[(0 * heads + h) * d + c] += oq[size_t(((b * nq + i / kBlockSparseQTile) * heads + h) * d + c)];
          row[(1 * heads + h) * d + c] += ok[size_t(((b * nk + i / kBlockSparseKvTile) * heads + h) * d + c)];
        }
  return x;
}

Problem make_problem(const rt::Context& ctx, int64_t b_n, int64_t len, int64_t heads, int64_t d, uint64_t seed) {
  const Tensor qkv = rt::to_ctx(ctx, fused_qkv(b_n, len, heads, d, seed));
  Problem p;
  p.gpu.q = qkv.select(2, 0), p.gpu.k = qkv.select(2, 1), p.gpu.v = qkv.select(2, 2);
  p.cpu.q = rt::to_host(ctx, p.gpu.q), p.cpu.k = rt::to_host(ctx, p.gpu.k), p.cpu.v = rt::to_host(ctx, p.gpu.v);
  return p;
}

sattn::MethodSpec method(const char* text) {
  auto r = sattn::parse_method(text);
  REQUIRE(r.is_ok());
  return r.value();
}

sattn::MaskRule plain_rule(int64_t len) {
  sattn::MaskRule r;
  r.tokens.text_len = len;
  return r;
}

bool all_finite(const Tensor& host) {
  for (float x : host.to_vector())
    if (!std::isfinite(x)) return false;
  return true;
}

// The device planner's lists, on the host, as a BlockLayout of the call's shape.
sattn::BlockLayout device_plan(const rt::Context& ctx, const Problem& p, float scale, int64_t critical) {
  sattn::BlockLayout l;
  l.q_tile = kBlockSparseQTile, l.kv_tile = kBlockSparseKvTile;
  l.seq_len = p.gpu.q.size(1), l.batch = p.gpu.q.size(0), l.heads = p.gpu.q.size(2);
  l.rule = plain_rule(l.seq_len);
#if DITRUN_WITH_CUDA
  const sattn::kernels::cuda::UploadedLayout u = sattn::kernels::cuda::plan_topk(ctx, p.gpu.q, p.gpu.k, scale, critical, l);
  const Tensor host = rt::to_host(ctx, u.buffer);  // int32 words in an f32-typed buffer: copied bit for bit
  REQUIRE(size_t(host.numel()) == u.words);
  std::vector<int32_t> words(u.words);
  std::memcpy(words.data(), host.raw_data(), u.words * sizeof(int32_t));
  const size_t e1 = size_t(l.entries() + 1);
  REQUIRE(u.words == 2 * e1 + size_t(l.entries() * critical));
  l.full_offsets.assign(words.begin(), words.begin() + e1);
  l.partial_offsets.assign(words.begin() + e1, words.begin() + 2 * e1);
  l.full_index.assign(words.begin() + 2 * e1, words.end());
#else
  (void)ctx, (void)p, (void)scale, (void)critical;
  FAIL("plan_topk needs a CUDA build");
#endif
  return l;
}

const char* const kSpecs[] = {"sla:critical=0.05,marginal=0.1", "sla:critical=0.3,marginal=0"};

struct Shape {
  int64_t batch, len, d;
};
const Shape kShapes[] = {{2, 1000, 64}, {2, 1000, 128}, {1, 4096 + 24, 64}, {1, 4096 + 24, 128}};
constexpr int64_t kHeads = 3;

}  // namespace

TEST_CASE("sla.device_planner_equals_cpu_planner", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  for (const Shape& s : kShapes)
    for (const char* text : kSpecs) {
      const Problem p = make_problem(ctx, s.batch, s.len, kHeads, s.d, uint64_t(s.len * 3 + s.d));
      const sattn::SlaSpec spec = method(text).sla;
      const float scale = 1.f / std::sqrt(float(s.d));
      const sattn::SlaTiles want = sattn::plan_sla(test::cpu_context(), p.cpu.q, p.cpu.k, scale, spec, plain_rule(s.len),
                                                   kBlockSparseQTile, kBlockSparseKvTile);
      const int64_t nk = want.layout.num_kv_tiles(), critical = sattn::sla_critical_count(spec, nk);
      const sattn::BlockLayout got = device_plan(ctx, p, scale, critical);
      INFO(text << " B=" << s.batch << " L=" << s.len << " D=" << s.d << " critical " << critical << " of " << nk);
      REQUIRE(sattn::validate(got) == "");
      const std::vector<float> scores = sattn::sla_tile_scores(test::cpu_context(), p.cpu.q, p.cpu.k, scale,
                                                               kBlockSparseQTile, kBlockSparseKvTile);
      int64_t compared = 0;
      for (int64_t e = 0; e < got.entries(); ++e) {
        REQUIRE(got.full_offsets[size_t(e) + 1] - got.full_offsets[size_t(e)] == critical);
        std::vector<float> row(scores.begin() + e * nk, scores.begin() + (e + 1) * nk);
        std::sort(row.begin(), row.end(), std::greater<float>());
        const float top = std::max(std::fabs(row.front()), std::fabs(row.back()));
        if (critical < nk && row[size_t(critical - 1)] - row[size_t(critical)] <= 1e-4f * top) continue;
        ++compared;
        const std::vector<int32_t> g(got.full_index.begin() + got.full_offsets[size_t(e)],
                                     got.full_index.begin() + got.full_offsets[size_t(e) + 1]);
        const std::vector<int32_t> w(want.layout.full_index.begin() + want.layout.full_offsets[size_t(e)],
                                     want.layout.full_index.begin() + want.layout.full_offsets[size_t(e) + 1]);
        CHECK(g == w);
      }
      CHECK(compared * 10 >= got.entries() * 9);
    }
}

// Once per block-sparse kernel: "sla.attention_matches_cpu_reference" on the sm80 kernel and
// "sla.sm90.attention_matches_cpu_reference" on the wgmma one and "sla.sm90ws.attention_matches_cpu_reference"
// on its warp-specialized variant (both skipped off compute capability 9.0).
static void attention_matches_cpu_reference(sattn::SparseKernel kernel) {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  KERNEL_OR_SKIP(ctx, kernel);
  for (const Shape& s : kShapes)
    for (const char* text : kSpecs) {
      Problem p = make_problem(ctx, s.batch, s.len, kHeads, s.d, uint64_t(s.len * 5 + s.d));
      p.gpu.method = p.cpu.method = method(text);
      p.gpu.sparse_kernel = kernel;
      INFO(text << " B=" << s.batch << " L=" << s.len << " D=" << s.d);
      CHECK_THAT(sattn::describe_attention(ctx, p.gpu), Catch::Contains("block_sparse (dynamic top-k"));
      const Tensor got = rt::to_host(ctx, sattn::attention(ctx, p.gpu));
      REQUIRE(all_finite(got));
      // The reference on the lists the device planned (the same planner runs inside attention()).
      const float scale = 1.f / std::sqrt(float(s.d));
      const int64_t nk = (s.len + kBlockSparseKvTile - 1) / kBlockSparseKvTile;
      const sattn::BlockLayout lists = device_plan(ctx, p, scale, sattn::sla_critical_count(p.cpu.method.sla, nk));
      const test::Diff diff = test::compare(got, sattn::reference::block_layout_attention_cpu(test::cpu_context(), p.cpu, lists));
      INFO(diff.str());
      CHECK(diff.rel_l2 <= kTol16);
      // And against the whole CPU path (CPU planner): equal up to rows near a tie, so the same bound holds
      // with these well-separated inputs.
      const test::Diff cpu = test::compare(got, sattn::attention(test::cpu_context(), p.cpu));
      INFO("against the CPU planner: " << cpu.str());
      CHECK(cpu.rel_l2 <= kTol16);
    }
}

TEST_CASE("sla.attention_matches_cpu_reference", "[cuda]") { attention_matches_cpu_reference(sattn::SparseKernel::Sm80); }
TEST_CASE("sla.sm90.attention_matches_cpu_reference", "[cuda]") {
  attention_matches_cpu_reference(sattn::SparseKernel::Sm90);
}
TEST_CASE("sla.sm90ws.attention_matches_cpu_reference", "[cuda]") {
  attention_matches_cpu_reference(sattn::SparseKernel::Sm90Ws);
}

#if DITRUN_WITH_CUDA
// The planner and the kernel stay on the stream: the call captures into a CUDA graph, and replays plan
// again from the inputs' current contents.
TEST_CASE("sla.graph_capture_replans_per_replay", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  if (ctx.debug_sync()) return;
  Problem p = make_problem(ctx, 1, 1000, kHeads, 128, 91);
  p.gpu.method = method("sla:critical=0.25,marginal=0.1");
  const Tensor out = rt::empty(ctx, p.gpu.q.shape(), DType::BF16);
  sattn::attention(ctx, p.gpu);  // kernel attributes set outside the capture
  rt::cuda::Graph graph;
  const std::string why = graph.capture(ctx, [&] { rt::copy_(ctx, out, sattn::attention(ctx, p.gpu)); });
  INFO(why);
  REQUIRE(why == "");
  for (uint64_t seed : {92, 93}) {
    const Tensor fresh = rt::to_ctx(ctx, fused_qkv(1, 1000, kHeads, 128, seed));
    for (int i = 0; i < 3; ++i) rt::copy_(ctx, (i == 0 ? p.gpu.q : i == 1 ? p.gpu.k : p.gpu.v), fresh.select(2, i));
    REQUIRE(graph.launch(ctx) == "");
    const Tensor want = rt::to_host(ctx, sattn::attention(ctx, p.gpu));
    CHECK(test::compare(rt::to_host(ctx, out), want).max_abs == 0.0);
  }
}
#endif
