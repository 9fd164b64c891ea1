// layer_norm_modulate, gated_residual and qk_norm_rope on the GPU against the CPU fused references
// (which tests/ops/test_fused.cpp ties to the chains of ops) on the same (rounded) values: Flux's
// shapes (C = 3072, modulation chunks of a [B, 6C] tensor, q/k of a fused qkv with 128-wide heads), odd
// sizes and offsets (element paths), strided views, empty inputs. Tolerances: op_check.h; the fused
// kernels round once on output, so 16-bit errors are the output rounding alone.
#include <cmath>
#include <vector>

#include "harness/gpu.h"
#include "ops.h"
#include "op_check.h"
#include "rng.h"

#include <catch2/catch.hpp>

using rt::DType;
using rt::Shape;
using rt::Tensor;

namespace {

// x [B, L, C] with per-sample vectors taken from chunk `chunk` of a [B, 6C] modulation tensor: Flux's
// width with aligned chunks, and odd widths whose chunks sit at odd offsets (element paths).
struct Case {
  int64_t b, l, c, chunk;
};

void layer_norm_modulate_cases(DType dtype) {
  DITRUN_GPU_OR_SKIP(ctx, dtype);
  const rt::Context& cpu = test::cpu_context();
  rt::TorchGenerator gen(501);
  for (const Case& k : {Case{2, 77, 3072, 0}, Case{3, 5, 37, 1}, Case{1, 9, 256, 3}}) {
    const auto x = opcheck::input(ctx, opcheck::randn(gen, {k.b, k.l, k.c}, 2.f, 3.f));
    const auto mod = opcheck::input(ctx, opcheck::randn(gen, {k.b, 6 * k.c}, 0.5f));
    const int64_t s0 = k.chunk * k.c, s1 = (k.chunk + 1) * k.c, s2 = (k.chunk + 2) * k.c;
    INFO("x " << x.host.str() << " chunks from " << s0);
    OPCHECK_MATCH(ctx, rt::layer_norm_modulate(ctx, x.dev, mod.dev.slice(1, s0, s1), mod.dev.slice(1, s1, s2), 1e-6f),
                  rt::layer_norm_modulate(cpu, x.host, mod.host.slice(1, s0, s1), mod.host.slice(1, s1, s2), 1e-6f),
                  opcheck::tolerance(ctx));
  }
  // x as a strided view (rows of a wider tensor) and as an empty sequence.
  const auto wide = opcheck::input(ctx, opcheck::randn(gen, {2, 7, 3 * 64}));
  const auto mod = opcheck::input(ctx, gen.randn({2, 2 * 64}));
  OPCHECK_MATCH(ctx, rt::layer_norm_modulate(ctx, wide.dev.slice(2, 64, 128), mod.dev.slice(1, 0, 64), mod.dev.slice(1, 64, 128), 1e-6f),
                rt::layer_norm_modulate(cpu, wide.host.slice(2, 64, 128), mod.host.slice(1, 0, 64), mod.host.slice(1, 64, 128), 1e-6f),
                opcheck::tolerance(ctx));
  const auto none = opcheck::input(ctx, gen.randn({2, 0, 64}));
  CHECK(rt::layer_norm_modulate(ctx, none.dev, mod.dev.slice(1, 0, 64), mod.dev.slice(1, 64, 128), 1e-6f).shape() ==
        Shape{2, 0, 64});
}
OPCHECK_DTYPES("fused.layer_norm_modulate", layer_norm_modulate_cases)

void gated_residual_cases(DType dtype) {
  DITRUN_GPU_OR_SKIP(ctx, dtype);
  const rt::Context& cpu = test::cpu_context();
  rt::TorchGenerator gen(502);
  for (const Case& k : {Case{2, 77, 3072, 2}, Case{3, 5, 37, 1}, Case{1, 4, 64, 5}}) {
    const auto x = opcheck::input(ctx, opcheck::randn(gen, {k.b, k.l, k.c}, 4.f));
    const auto y = opcheck::input(ctx, gen.randn({k.b, k.l, k.c}));
    const auto mod = opcheck::input(ctx, gen.randn({k.b, 6 * k.c}));
    const Tensor g_dev = mod.dev.slice(1, k.chunk * k.c, (k.chunk + 1) * k.c);
    const Tensor g = mod.host.slice(1, k.chunk * k.c, (k.chunk + 1) * k.c);
    INFO("x " << x.host.str() << " gate chunk " << k.chunk);
    OPCHECK_MATCH(ctx, rt::gated_residual(ctx, x.dev, g_dev, y.dev), rt::gated_residual(cpu, x.host, g, y.host),
                  opcheck::tolerance(ctx));
  }
  // y with a strided last dim; x as rows of a wider tensor; empty.
  const auto x = opcheck::input(ctx, gen.randn({2, 6, 3 * 16}));
  const auto yt = opcheck::input(ctx, gen.randn({2, 16, 6}));
  const auto gate = opcheck::input(ctx, gen.randn({2, 16}));
  OPCHECK_MATCH(ctx, rt::gated_residual(ctx, x.dev.slice(2, 16, 32), gate.dev, yt.dev.transpose(1, 2)),
                rt::gated_residual(cpu, x.host.slice(2, 16, 32), gate.host, yt.host.transpose(1, 2)), opcheck::tolerance(ctx));
  const auto none = opcheck::input(ctx, gen.randn({2, 0, 16}));
  CHECK(rt::gated_residual(ctx, none.dev, gate.dev, none.dev).shape() == Shape{2, 0, 16});
}
OPCHECK_DTYPES("fused.gated_residual", gated_residual_cases)

void qk_norm_rope_cases(DType dtype) {
  DITRUN_GPU_OR_SKIP(ctx, dtype);
  const rt::Context& cpu = test::cpu_context();
  rt::TorchGenerator gen(503);
  using View = opcheck::Input;
  std::vector<View> xs;
  // q and k of a fused qkv [B, L, 3, H, D] with Flux's head dim (packed path).
  const auto qkv = opcheck::input(ctx, opcheck::randn(gen, {1, 40, 3 * 6 * 128}, 3.f));
  for (int64_t i : {0, 1})
    xs.push_back({qkv.dev.view({1, 40, 3, 6, 128}).select(2, i), qkv.host.view({1, 40, 3, 6, 128}).select(2, i)});
  // A small head dim inside an odd-width tensor (odd offsets: pair path), a strided last dim, empty.
  const auto odd = opcheck::input(ctx, gen.randn({2, 40, 3, 7}));
  xs.push_back({odd.dev.slice(3, 1, 7), odd.host.slice(3, 1, 7)});
  const auto dh = opcheck::input(ctx, gen.randn({2, 40, 16, 3}));
  xs.push_back({dh.dev.transpose(2, 3), dh.host.transpose(2, 3)});
  const auto e = opcheck::input(ctx, gen.randn({0, 40, 2, 8}));
  xs.push_back({e.dev, e.host});
  for (const View& x : xs) {
    const int64_t d = x.host.size(3);
    const auto [c, s] = opcheck::rope_tables(gen, 40, d / 2);
    const auto w = opcheck::input(ctx, opcheck::randn(gen, {d}, 0.5f, 1.f));
    const auto cd = opcheck::input(ctx, c), sd = opcheck::input(ctx, s);
    INFO(x.host.str() << " strides " << rt::shape_str(x.host.strides()));
    OPCHECK_MATCH(ctx, rt::qk_norm_rope(ctx, x.dev, w.dev, cd.dev, sd.dev, 1e-6f),
                  rt::qk_norm_rope(cpu, x.host, w.host, cd.host, sd.host, 1e-6f), opcheck::tolerance(ctx));
    // cos/sin in f32 next to (possibly) 16-bit x, and no weight.
    const Tensor c32 = rt::to_device(ctx, c, ctx.device(), DType::F32), s32 = rt::to_device(ctx, s, ctx.device(), DType::F32);
    OPCHECK_MATCH(ctx, rt::qk_norm_rope(ctx, x.dev, {}, c32, s32, 1e-6f), rt::qk_norm_rope(cpu, x.host, {}, c, s, 1e-6f),
                  opcheck::tolerance(ctx));
  }
}
OPCHECK_DTYPES("fused.qk_norm_rope", qk_norm_rope_cases)

}  // namespace
