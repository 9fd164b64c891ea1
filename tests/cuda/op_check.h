// Shared by the GPU op tests (elementwise, norm, layout, fused): inputs go to the device in the context's
// dtype and come back as the f32 values the device holds (bf16/f16-rounded), so the CPU reference sees
// exactly the GPU's inputs and only output rounding and f32-vs-double accumulation differ.
// Tolerances (relative L2 over the output) for elementwise/norm/layout-class ops:
// - f32: 1e-5 (libm vs CUDA transcendental ulps, f32 vs double statistics);
// - bf16/f16: 8e-3: the output is rounded to 8 (bf16) or 11 (f16) mantissa bits, a relative RMS error of
//   about 2^-9/√3 ≈ 1.1e-3 for bf16, plus an intermediate rounding where the composition has one.
#pragma once
#include <cmath>
#include <utility>
#include <vector>

#include "harness/compare.h"
#include "harness/gpu.h"
#include "ops.h"
#include "rng.h"

namespace opcheck {

inline constexpr double kTolF32 = 1e-5;
inline constexpr double kTol16 = 8e-3;

inline double tolerance(const rt::Context& ctx) { return ctx.dtype() == rt::DType::F32 ? kTolF32 : kTol16; }

// A host tensor on the device (context dtype) and the very values it holds, back on the host in f32.
struct Input {
  rt::Tensor dev, host;
};
inline Input input(const rt::Context& ctx, const rt::Tensor& x) {
  const rt::Tensor dev = rt::to_ctx(ctx, x);
  return {dev, rt::to_host(ctx, dev)};
}

// randn·scale + shift on the host: wider values reach the activations' tails, and a mean far from zero
// tests the norms' cancellation.
inline rt::Tensor randn(rt::TorchGenerator& gen, const rt::Shape& shape, float scale = 1.f, float shift = 0.f) {
  return rt::affine(test::cpu_context(), gen.randn(shape), scale, shift);
}

// RoPE tables cos/sin [L, half] of random angles.
inline std::pair<rt::Tensor, rt::Tensor> rope_tables(rt::TorchGenerator& gen, int64_t l, int64_t half) {
  const std::vector<float> theta = gen.randn({l, half}).to_vector();
  std::vector<float> c(theta.size()), s(theta.size());
  for (size_t i = 0; i < theta.size(); ++i) {
    c[i] = std::cos(3.f * theta[i]);
    s[i] = std::sin(3.f * theta[i]);
  }
  return {rt::Tensor::from_vector(c, {l, half}), rt::Tensor::from_vector(s, {l, half})};
}

inline bool all_finite(const rt::Tensor& host) {
  for (float v : host.to_vector())
    if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace opcheck

// Downloads `got` (a device tensor) and checks it against `want` (CPU f32): same shape, finite, and
// relative L2 <= tol. Use after <catch2/catch.hpp>.
#define OPCHECK_MATCH(ctx, got, want, tol)                        \
  do {                                                            \
    const rt::Tensor got_host_ = rt::to_host(ctx, got);           \
    const rt::Tensor want_ = (want);                              \
    REQUIRE(got_host_.shape() == want_.shape());                  \
    const test::Diff diff_ = test::compare(got_host_, want_);     \
    INFO(#got << " vs " << #want << ": " << diff_.str());         \
    CHECK(opcheck::all_finite(got_host_));                        \
    CHECK(diff_.rel_l2 <= (tol));                                 \
  } while (0)

// One TEST_CASE per GPU float dtype, each running fn(dtype): "<name>.f32", "<name>.bf16", "<name>.f16".
#define OPCHECK_DTYPES(name, fn)                                   \
  TEST_CASE(name ".f32", "[cuda]") { fn(rt::DType::F32); }         \
  TEST_CASE(name ".bf16", "[cuda]") { fn(rt::DType::BF16); }       \
  TEST_CASE(name ".f16", "[cuda]") { fn(rt::DType::F16); }
