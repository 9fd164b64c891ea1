// The fused reference ops against the chains of existing ops they replace (as the Flux blocks write
// them), on strided views and odd sizes: max |fused − chain| <= 1e-6 (they round in the same order).
#include "harness/compare.h"
#include "ops.h"
#include "rng.h"

#include <catch2/catch.hpp>

using rt::Tensor;

namespace {

constexpr double kTol = 1e-6;

const rt::Context& ctx() {
  static const rt::Context c(rt::ContextOptions{rt::Device::cpu(), 2});
  return c;
}

Tensor modulate_chain(const Tensor& x, const Tensor& shift, const Tensor& scale, float eps) {
  const Tensor normed = rt::layer_norm(ctx(), x, {}, {}, eps);
  return rt::add(ctx(), rt::mul(ctx(), normed, rt::affine(ctx(), scale, 1.f, 1.f).unsqueeze(1)), shift.unsqueeze(1));
}

}  // namespace

TEST_CASE("fused.layer_norm_modulate equals layer_norm then modulate", "[fused]") {
  rt::TorchGenerator gen(401);
  const Tensor x = rt::affine(ctx(), gen.randn({2, 5, 13}), 2.f, 3.f);
  const Tensor mod = gen.randn({2, 6 * 13});  // shift and scale are chunks of one modulation output
  const Tensor shift = mod.slice(1, 13, 26), scale = mod.slice(1, 26, 39);
  const Tensor got = rt::layer_norm_modulate(ctx(), x, shift, scale, 1e-6f);
  CHECK(test::compare(got, modulate_chain(x, shift, scale, 1e-6f)).max_abs <= kTol);
  // x as a strided view, B = 1.
  const Tensor wide = gen.randn({1, 7, 40});
  const Tensor xv = wide.slice(2, 5, 29);
  const Tensor m1 = gen.randn({1, 48});
  CHECK(test::compare(rt::layer_norm_modulate(ctx(), xv, m1.slice(1, 0, 24), m1.slice(1, 24, 48), 1e-5f),
                      modulate_chain(xv, m1.slice(1, 0, 24), m1.slice(1, 24, 48), 1e-5f))
            .max_abs <= kTol);
  // Empty sequence.
  const Tensor empty = rt::layer_norm_modulate(ctx(), gen.randn({2, 0, 13}), shift, scale, 1e-6f);
  CHECK(empty.shape() == rt::Shape{2, 0, 13});
}

TEST_CASE("fused.gated_residual equals x + gate * y", "[fused]") {
  rt::TorchGenerator gen(402);
  const Tensor x = gen.randn({3, 7, 11});
  const Tensor y = gen.randn({3, 11, 7}).transpose(1, 2);  // a strided view, as after a transpose
  const Tensor gate = gen.randn({3, 33}).slice(1, 11, 22);
  const Tensor chain = rt::add(ctx(), x, rt::mul(ctx(), gate.unsqueeze(1), y));
  CHECK(test::compare(rt::gated_residual(ctx(), x, gate, y), chain).max_abs <= kTol);
  CHECK(rt::gated_residual(ctx(), gen.randn({3, 0, 11}), gate, gen.randn({3, 0, 11})).numel() == 0);
}

TEST_CASE("fused.qk_norm_rope equals rms_norm then rope", "[fused]") {
  rt::TorchGenerator gen(403);
  const Tensor qkv = gen.randn({2, 5, 3 * 3 * 8});
  const Tensor q = qkv.view({2, 5, 3, 3, 8}).select(2, 0), k = qkv.view({2, 5, 3, 3, 8}).select(2, 1);  // [2, 5, 3, 8]
  const Tensor w = rt::affine(ctx(), gen.randn({8}), 0.5f, 1.f);
  const Tensor cos = gen.randn({5, 4}), sin = gen.randn({5, 4});
  for (const Tensor& x : {q, k}) {
    const Tensor chain = rt::rope(ctx(), rt::rms_norm(ctx(), x, w, 1e-6f), cos, sin);
    const Tensor got = rt::qk_norm_rope(ctx(), x, w, cos, sin, 1e-6f);
    REQUIRE(got.is_contiguous());
    CHECK(test::compare(got, chain).max_abs <= kTol);
  }
  const Tensor chain = rt::rope(ctx(), rt::rms_norm(ctx(), q, {}, 1e-6f), cos, sin);
  CHECK(test::compare(rt::qk_norm_rope(ctx(), q, {}, cos, sin, 1e-6f), chain).max_abs <= kTol);
}
