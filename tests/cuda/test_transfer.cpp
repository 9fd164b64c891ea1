// Device memory round trips: upload, strided copy with dtype conversion, download, concat and
// upsample (both reduce to strided copies), against the CPU tensors they came from.
#include <vector>

#include "harness/compare.h"
#include "harness/gpu.h"
#include "ops.h"
#include "rng.h"

#include <catch2/catch.hpp>

using rt::DType;
using rt::Tensor;

TEST_CASE("transfer.round_trip_f32_exact", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::F32);
  rt::TorchGenerator gen(1);
  const Tensor x = gen.randn({3, 5, 7});
  const Tensor back = rt::to_host(ctx, rt::to_ctx(ctx, x));
  REQUIRE(back.shape() == x.shape());
  CHECK(test::compare(back, x).max_abs == 0.0);
}

TEST_CASE("transfer.bf16_rounding_and_strided_views", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  rt::TorchGenerator gen(2);
  const Tensor x = gen.randn({4, 6, 10});
  const Tensor dev = rt::to_ctx(ctx, x);
  REQUIRE(dev.dtype() == DType::BF16);
  // bf16 keeps 8 bits of mantissa: relative error per element <= 2^-9.
  const test::Diff d = test::compare(rt::to_host(ctx, dev), x);
  CHECK(d.rel_l2 < 4e-3);
  // A permuted, sliced view made contiguous on the device equals the same view on the host.
  const Tensor view_dev = dev.permute({2, 0, 1}).slice(0, 3, 9);
  const Tensor view_ref = rt::to_host(ctx, dev).permute({2, 0, 1}).slice(0, 3, 9).contiguous();
  CHECK(test::compare(rt::to_host(ctx, rt::contiguous(ctx, view_dev)), view_ref).max_abs == 0.0);
  // Cast to f32 on the device and back: exact (bf16 -> f32 is exact).
  CHECK(test::compare(rt::to_host(ctx, rt::cast(ctx, dev, DType::F32)), rt::to_host(ctx, dev)).max_abs == 0.0);
}

TEST_CASE("transfer.concat_and_upsample_match_cpu", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::F32);
  const rt::Context& cpu = test::cpu_context();
  rt::TorchGenerator gen(3);
  const Tensor a = gen.randn({2, 3, 5}), b = gen.randn({2, 4, 5});
  const Tensor want = rt::concat(cpu, {a, b}, 1);
  const Tensor got = rt::to_host(ctx, rt::concat(ctx, {rt::to_ctx(ctx, a), rt::to_ctx(ctx, b)}, 1));
  CHECK(test::compare(got, want).max_abs == 0.0);
  const Tensor img = gen.randn({1, 3, 5, 7});
  const Tensor up_want = rt::upsample_nearest2d(cpu, img, 2);
  const Tensor up_got = rt::to_host(ctx, rt::upsample_nearest2d(ctx, rt::to_ctx(ctx, img), 2));
  REQUIRE(up_got.shape() == up_want.shape());
  CHECK(test::compare(up_got, up_want).max_abs == 0.0);
}

TEST_CASE("transfer.transposes_nchw_nhwc_and_2d", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  rt::TorchGenerator gen(4);
  // Odd sizes so tiles are partial; bf16 -> bf16 copies are exact.
  for (const rt::Shape& shape : {rt::Shape{2, 37, 9, 11}, rt::Shape{1, 128, 33, 65}}) {
    const Tensor host = rt::to_host(ctx, rt::to_ctx(ctx, gen.randn(shape)));  // bf16-rounded values in f32
    const Tensor dev = rt::to_ctx(ctx, host);
    const Tensor nhwc = rt::contiguous(ctx, dev.permute({0, 2, 3, 1}));
    CHECK(test::compare(rt::to_host(ctx, nhwc), host.permute({0, 2, 3, 1}).contiguous()).max_abs == 0.0);
    const Tensor back = rt::contiguous(ctx, nhwc.permute({0, 3, 1, 2}));
    CHECK(test::compare(rt::to_host(ctx, back), host).max_abs == 0.0);
  }
  const Tensor m = rt::to_host(ctx, rt::to_ctx(ctx, gen.randn({45, 70})));
  CHECK(test::compare(rt::to_host(ctx, rt::contiguous(ctx, rt::to_ctx(ctx, m).transpose(0, 1))),
                      m.transpose(0, 1).contiguous()).max_abs == 0.0);
}
