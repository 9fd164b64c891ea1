// sattn::attention with a method on the CPU: structured calls run the planned layout on the CPU reference
// and equal the explicit mask; the default (dense, no layout) still runs the dense reference; bad calls
// and describe_attention. Tolerance: relative L2 <= 1e-5 (f32 on both sides, different key order).
#include "harness/compare.h"
#include "harness/gpu.h"
#include "rng.h"
#include "sparse_attention/attention.h"
#include "sparse_attention/reference/dense_cpu.h"
#include "sparse_attention/reference/sparse_cpu.h"

#include <catch2/catch.hpp>

using sattn::AttentionParams;

namespace {

constexpr double kTol = 1e-5;

AttentionParams call(const sattn::TokenLayout& t, const char* method, uint64_t seed) {
  rt::TorchGenerator g(seed);
  AttentionParams p;
  const int64_t len = t.seq_len();
  p.q = g.randn({1, len, 2, 16});
  p.k = g.randn({1, len, 2, 16});
  p.v = g.randn({1, len, 2, 16});
  p.tokens = t;
  p.method = sattn::parse_method(method).value();
  return p;
}

sattn::TokenLayout image(int64_t h, int64_t w, int64_t text, int64_t valid, bool before) {
  sattn::TokenLayout t;
  t.grid[1] = h;
  t.grid[2] = w;
  t.text_len = text;
  t.text_valid = valid;
  t.text_before = before;
  return t;
}

}  // namespace

TEST_CASE("attention_methods.gna and grat on the CPU equal the explicit mask", "[sparse]") {
  const rt::Context& ctx = test::cpu_context();
  for (const char* m : {"gna:window=5x7,stride=2x3", "gna:window=3x5,dilation=2x1,causal=1x0", "grat:group=4x4",
                        "grat:variant=X,group=3x5", "dense"}) {
    for (bool before : {true, false}) {
      const AttentionParams p = call(image(9, 13, 10, 7, before), m, 3);
      INFO(m << (before ? " text before" : " text after"));
      const test::Diff d = test::compare(sattn::attention(ctx, p), sattn::reference::masked_attention_cpu(
                                                                          ctx, p, p.method.for_tokens(p.tokens)));
      INFO(d.str());
      CHECK(d.rel_l2 <= kTol);
      CHECK_THAT(sattn::describe_attention(ctx, p), Catch::StartsWith(sattn::method_str(p.method) + ": cpu block-sparse"));
      AttentionParams r = p;
      r.kernel = sattn::DenseKernel::Reference;  // the explicit mask itself
      CHECK(test::compare(sattn::attention(ctx, r), sattn::attention(ctx, p)).rel_l2 <= kTol);
    }
  }
}

TEST_CASE("attention_methods.default calls are plain dense attention", "[sparse]") {
  const rt::Context& ctx = test::cpu_context();
  AttentionParams p = call(sattn::TokenLayout{}, "dense", 4);
  p.tokens = sattn::TokenLayout{};
  CHECK(test::compare(sattn::attention(ctx, p), sattn::reference::dense_attention_cpu(ctx, p)).rel_l2 == 0);
  CHECK(sattn::describe_attention(ctx, p) == "cpu_reference");
  // A layout without padding and the dense method is still the plain path.
  p = call(image(4, 4, 6, -1, true), "dense", 5);
  CHECK(sattn::describe_attention(ctx, p) == "cpu_reference");
}

TEST_CASE("attention_methods.describe_attention says why a method cannot run", "[sparse]") {
  const rt::Context& ctx = test::cpu_context();
  AttentionParams p = call(image(4, 6, 0, -1, true), "gna:window=5x5", 6);
  CHECK_THAT(sattn::describe_attention(ctx, p), Catch::Contains("larger than the grid's H axis of 4"));
  p = call(image(4, 6, 0, -1, true), "grat:group=2x2", 6);
  p.kernel = sattn::DenseKernel::Cudnn;
  CHECK_THAT(sattn::describe_attention(ctx, p), Catch::Contains("cuDNN runs plain dense calls only"));
}
