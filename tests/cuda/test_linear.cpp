// cuBLASLt linear / linear_gelu_tanh / matmul against the CPU reference (OpenBLAS sgemm), fed the inputs
// exactly as the GPU stores them (op_check.h: bf16/f16-rounded), so only the product's own error is measured.
// Tolerances (relative L2): f32 1e-4 (full f32 FMA, no TF32: only summation order differs); bf16/f16 1e-2
// (f32 accumulation, then the output is rounded to bf16: ~2^-9 per element, about 2e-3 in L2).
// linear_gelu_tanh in f32: 1e-3, because cuBLASLt may evaluate the epilogue's tanh with the hardware
// approximation (relative error ~2^-11), which is outside ditrun's control.
#include <cmath>
#include <functional>
#include <string>

#include "harness/gpu.h"
#include "op_check.h"
#include "ops.h"
#include "rng.h"

#include <catch2/catch.hpp>

using rt::DType;
using rt::Shape;
using rt::Tensor;

namespace {

double gemm_tolerance(DType dt) { return dt == DType::F32 ? 1e-4 : 1e-2; }

// t rounded to what the GPU context stores, back as f32 on the host.
Tensor as_stored(const rt::Context& gpu, const Tensor& t) { return opcheck::input(gpu, t).host; }

// x [.., K] and weight [N, K] of a fresh random problem, scaled so that x·Wᵀ is O(1) (GELU's curved range).
struct Problem {
  Tensor x, w, b;
};

Problem random_problem(const rt::Context& gpu, uint64_t seed, const Shape& x_shape, int64_t n, bool bias) {
  rt::TorchGenerator gen(seed);
  const rt::Context& cpu = test::cpu_context();
  const int64_t k = x_shape.back();
  Problem p;
  p.x = as_stored(gpu, gen.randn(x_shape));
  p.w = as_stored(gpu, rt::affine(cpu, gen.randn({n, k}), float(1.0 / std::sqrt(double(k))), 0.f));
  if (bias) p.b = as_stored(gpu, gen.randn({n}));
  return p;
}

using LinearOp = std::function<Tensor(const rt::Context&, const Tensor&, const Tensor&, const Tensor&)>;

Tensor plain_linear(const rt::Context& c, const Tensor& x, const Tensor& w, const Tensor& b) { return rt::linear(c, x, w, b); }
Tensor fused_gelu(const rt::Context& c, const Tensor& x, const Tensor& w, const Tensor& b) {
  return rt::linear_gelu_tanh(c, x, w, b);
}

// GPU vs CPU for one problem, bias on and off.
void check_linear(const rt::Context& gpu, const LinearOp& op, const Shape& x_shape, int64_t n, uint64_t seed, double tol) {
  for (bool bias : {true, false}) {
    const Problem p = random_problem(gpu, seed, x_shape, n, bias);
    const Tensor want = op(test::cpu_context(), p.x, p.w, p.b);
    const Tensor got = op(gpu, rt::to_ctx(gpu, p.x), rt::to_ctx(gpu, p.w), p.b.defined() ? rt::to_ctx(gpu, p.b) : Tensor());
    REQUIRE(got.dtype() == gpu.dtype());
    INFO("x " << p.x.str() << " w " << p.w.str() << (bias ? " +bias" : ""));
    OPCHECK_MATCH(gpu, got, want, tol);
  }
}

}  // namespace

static void odd_sizes(DType dt) {
  DITRUN_GPU_OR_SKIP(ctx, dt);
  uint64_t seed = 10;
  for (int64_t m : {1, 7, 33})
    for (int64_t k : {24, 100})
      for (int64_t n : {5, 3072}) check_linear(ctx, plain_linear, {m, k}, n, seed++, gemm_tolerance(dt));
}
OPCHECK_DTYPES("linear.odd_sizes", odd_sizes)

static void batch_dims(DType dt) {
  DITRUN_GPU_OR_SKIP(ctx, dt);
  check_linear(ctx, plain_linear, {2, 3, 7, 24}, 5, 30, gemm_tolerance(dt));
  check_linear(ctx, plain_linear, {1, 33, 100}, 40, 31, gemm_tolerance(dt));
  check_linear(ctx, plain_linear, {100}, 7, 32, gemm_tolerance(dt));  // a single vector
}
OPCHECK_DTYPES("linear.batch_dims", batch_dims)

static void strided_views(DType dt) {
  DITRUN_GPU_OR_SKIP(ctx, dt);
  const rt::Context& cpu = test::cpu_context();
  rt::TorchGenerator gen(40);
  const auto wide = opcheck::input(ctx, gen.randn({2, 9, 2 * 24}));  // x = wide[..., 5:29]: rows 48 apart, odd offset
  const auto tall = opcheck::input(ctx, gen.randn({9, 2, 24}));      // x = tallᵀ(0,1): no single row stride
  const auto wt = opcheck::input(ctx, gen.randn({24, 13}));          // weight = wtᵀ, a column-major [13, 24]
  const auto b = opcheck::input(ctx, gen.randn({13}));
  const auto b2 = opcheck::input(ctx, gen.randn({26}));  // bias = every other element
  const Tensor wide_x = wide.dev.slice(2, 5, 29), tall_x = tall.dev.transpose(0, 1), w = wt.dev.transpose(0, 1);
  OPCHECK_MATCH(ctx, rt::linear(ctx, wide_x, w, b.dev),
                rt::linear(cpu, wide.host.slice(2, 5, 29), wt.host.transpose(0, 1), b.host), gemm_tolerance(dt));
  OPCHECK_MATCH(ctx, rt::linear(ctx, tall_x, w), rt::linear(cpu, tall.host.transpose(0, 1), wt.host.transpose(0, 1)),
                gemm_tolerance(dt));
  OPCHECK_MATCH(ctx, rt::linear(ctx, tall_x, w, b2.dev.view({13, 2}).select(1, 0)),
                rt::linear(cpu, tall.host.transpose(0, 1), wt.host.transpose(0, 1), b2.host.view({13, 2}).select(1, 0)),
                gemm_tolerance(dt));
}
OPCHECK_DTYPES("linear.strided_views", strided_views)

static void gelu_tanh_epilogue(DType dt) {
  DITRUN_GPU_OR_SKIP(ctx, dt);
  const double tol = dt == DType::F32 ? 1e-3 : 1e-2;
  check_linear(ctx, fused_gelu, {33, 100}, 3072, 50, tol);
  check_linear(ctx, fused_gelu, {2, 7, 24}, 5, 51, tol);
  check_linear(ctx, fused_gelu, {1, 24}, 40, 52, tol);
}
OPCHECK_DTYPES("linear.gelu_tanh_epilogue", gelu_tanh_epilogue)

static void matmul_cases(DType dt) {
  DITRUN_GPU_OR_SKIP(ctx, dt);
  const rt::Context& cpu = test::cpu_context();
  const double tol = gemm_tolerance(dt);
  rt::TorchGenerator gen(60);
  const auto a = opcheck::input(ctx, gen.randn({2, 3, 7, 24}));
  const auto b = opcheck::input(ctx, gen.randn({2, 3, 24, 5}));
  const auto kt = opcheck::input(ctx, gen.randn({2, 3, 33, 24}));  // b = ktᵀ: the attention-score layout
  OPCHECK_MATCH(ctx, rt::matmul(ctx, a.dev, b.dev), rt::matmul(cpu, a.host, b.host), tol);
  OPCHECK_MATCH(ctx, rt::matmul(ctx, a.dev, kt.dev.transpose(2, 3)), rt::matmul(cpu, a.host, kt.host.transpose(2, 3)), tol);
  // a as a transposed (column-major) view whose batch dims do not collapse to one stride.
  const auto at = opcheck::input(ctx, gen.randn({3, 2, 24, 7}));
  OPCHECK_MATCH(ctx, rt::matmul(ctx, at.dev.transpose(2, 3).transpose(0, 1), b.dev),
                rt::matmul(cpu, at.host.transpose(2, 3).transpose(0, 1), b.host), tol);
  // 2-D with M = 1, and M = N = 1 batched.
  const auto v = opcheck::input(ctx, gen.randn({1, 100})), m = opcheck::input(ctx, gen.randn({100, 33}));
  OPCHECK_MATCH(ctx, rt::matmul(ctx, v.dev, m.dev), rt::matmul(cpu, v.host, m.host), tol);
  const auto r = opcheck::input(ctx, gen.randn({2, 1, 24})), c = opcheck::input(ctx, gen.randn({2, 24, 1}));
  OPCHECK_MATCH(ctx, rt::matmul(ctx, r.dev, c.dev), rt::matmul(cpu, r.host, c.host), tol);
  // Same shapes again: the cached plan, with other pointers.
  const auto a2 = opcheck::input(ctx, gen.randn({2, 3, 7, 24}));
  OPCHECK_MATCH(ctx, rt::matmul(ctx, a2.dev, b.dev), rt::matmul(cpu, a2.host, b.host), tol);
}
OPCHECK_DTYPES("linear.matmul", matmul_cases)

// Flux.1-dev's projections (hidden 3072, 1024² = 4608 tokens): the full product on the GPU, checked on a
// band of 37 output rows against the CPU (the whole CPU product would take minutes).
TEST_CASE("linear.flux_shapes_bf16", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  const rt::Context& cpu = test::cpu_context();
  struct Case {
    int64_t m, k, n;
    bool gelu;
  };
  uint64_t seed = 70;
  for (const Case c : {Case{4608, 3072, 9216, false}, Case{4608, 3072, 12288, true}, Case{4096, 3072, 3072, false},
                       Case{4608, 15360, 3072, false}}) {
    const Problem p = random_problem(ctx, seed++, {c.m, c.k}, c.n, true);
    const Tensor x_d = rt::to_ctx(ctx, p.x), w_d = rt::to_ctx(ctx, p.w), b_d = rt::to_ctx(ctx, p.b);
    const Tensor y = c.gelu ? rt::linear_gelu_tanh(ctx, x_d, w_d, b_d) : rt::linear(ctx, x_d, w_d, b_d);
    REQUIRE(y.shape() == Shape{c.m, c.n});
    const int64_t r0 = c.m - 40;
    const Tensor x_rows = p.x.slice(0, r0, r0 + 37);
    const Tensor want = c.gelu ? rt::linear_gelu_tanh(cpu, x_rows, p.w, p.b) : rt::linear(cpu, x_rows, p.w, p.b);
    INFO(p.x.str() << " x " << p.w.str() << (c.gelu ? "ᵀ gelu" : "ᵀ"));
    OPCHECK_MATCH(ctx, y.slice(0, r0, r0 + 37), want, 1e-2);
  }
}

// Flux's single-stream linear2 split along K: acc + x·W[:, k0:k1]ᵀ (+ bias) with W a column slice (row
// stride > K) and acc another product, against the CPU.
TEST_CASE("linear.accumulate_column_slices", "[cuda]") {
  for (DType dt : {DType::F32, DType::BF16}) {
    DITRUN_GPU_OR_SKIP(gpu, dt);
    const rt::Context& cpu = test::cpu_context();
    rt::TorchGenerator gen(77);
    const int64_t rows = 37, c = 48, m = 200;
    const Tensor attn = as_stored(gpu, gen.randn({1, rows, c})), mlp = as_stored(gpu, gen.randn({1, rows, m}));
    const Tensor w = as_stored(gpu, rt::affine(cpu, gen.randn({c, c + m}), 0.07f, 0.f));
    const Tensor b = as_stored(gpu, gen.randn({c}));
    const Tensor want = rt::linear(cpu, rt::concat(cpu, {attn, mlp}, 2), w, b);
    const Tensor wd = rt::to_ctx(gpu, w);
    const Tensor first = rt::linear(gpu, rt::to_ctx(gpu, attn), wd.slice(1, 0, c), rt::to_ctx(gpu, b));
    const Tensor got = rt::linear_accumulate(gpu, rt::to_ctx(gpu, mlp), wd.slice(1, c, c + m), {}, first);
    REQUIRE(got.shape() == want.shape());
    const test::Diff d = test::compare(rt::to_host(gpu, got), want);
    INFO(rt::dtype_name(dt) << ": " << d.str());
    CHECK_FALSE(d.nan_mismatch);
    CHECK(d.rel_l2 <= gemm_tolerance(dt));
  }
}
