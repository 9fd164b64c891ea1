// layer_norm, rms_norm, softmax and group_norm on the GPU against the CPU reference (double statistics)
// on the same (rounded) values: Flux's rows (3072, q/k heads of 128 inside a fused qkv tensor), long
// and odd rows, strided views, empty tensors, and a VAE-sized group (131072 elements). Tolerances:
// op_check.h (the GPU's f32 statistics stay far inside the f32 budget).
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

using View = opcheck::Input;

// Row layouts the norms must handle: contiguous rows (packed and odd lengths, warp-slice and block
// paths), rows at an aligned and at an odd offset inside a wider tensor, a strided last dim, q of a
// fused qkv projection [B, L, 3, H, D] and an empty tensor.
std::vector<View> row_views(const rt::Context& ctx, rt::TorchGenerator& gen) {
  std::vector<View> v;
  for (const Shape& s : std::vector<Shape>{{4, 3072}, {3, 5000}, {3, 3001}, {7, 37}, {2, 3, 128}, {5, 1}, {2, 1000}}) {
    const auto x = opcheck::input(ctx, opcheck::randn(gen, s, 2.f, 3.f));
    v.push_back({x.dev, x.host});
  }
  const auto wide = opcheck::input(ctx, opcheck::randn(gen, {5, 3 * 128}, 1.5f, -1.f));
  v.push_back({wide.dev.slice(1, 128, 256), wide.host.slice(1, 128, 256)});
  v.push_back({wide.dev.slice(1, 3, 131), wide.host.slice(1, 3, 131)});
  const auto t = opcheck::input(ctx, opcheck::randn(gen, {37, 7}));
  v.push_back({t.dev.transpose(0, 1), t.host.transpose(0, 1)});
  const auto qkv = opcheck::input(ctx, opcheck::randn(gen, {2, 33, 3 * 4 * 128}));
  v.push_back({qkv.dev.view({2, 33, 3, 4, 128}).select(2, 1), qkv.host.view({2, 33, 3, 4, 128}).select(2, 1)});
  const auto e = opcheck::input(ctx, gen.randn({0, 16}));
  v.push_back({e.dev, e.host});
  return v;
}

void layer_norm_rows(DType dtype) {
  DITRUN_GPU_OR_SKIP(ctx, dtype);
  const rt::Context& cpu = test::cpu_context();
  rt::TorchGenerator gen(201);
  for (const View& x : row_views(ctx, gen)) {
    const int64_t c = x.host.size(-1);
    const auto w = opcheck::input(ctx, opcheck::randn(gen, {c}, 0.5f, 1.f)), b = opcheck::input(ctx, gen.randn({c}));
    INFO(x.host.str() << " strides " << rt::shape_str(x.host.strides()));
    OPCHECK_MATCH(ctx, rt::layer_norm(ctx, x.dev, w.dev, b.dev, 1e-6f), rt::layer_norm(cpu, x.host, w.host, b.host, 1e-6f),
                  opcheck::tolerance(ctx));
    OPCHECK_MATCH(ctx, rt::layer_norm(ctx, x.dev, w.dev, {}, 1e-5f), rt::layer_norm(cpu, x.host, w.host, {}, 1e-5f),
                  opcheck::tolerance(ctx));
    OPCHECK_MATCH(ctx, rt::layer_norm(ctx, x.dev, {}, {}, 0.5f), rt::layer_norm(cpu, x.host, {}, {}, 0.5f),
                  opcheck::tolerance(ctx));
  }
}
OPCHECK_DTYPES("norm.layer_norm_rows", layer_norm_rows)

void rms_norm_rows(DType dtype) {
  DITRUN_GPU_OR_SKIP(ctx, dtype);
  const rt::Context& cpu = test::cpu_context();
  rt::TorchGenerator gen(202);
  for (const View& x : row_views(ctx, gen)) {
    const auto w = opcheck::input(ctx, opcheck::randn(gen, {x.host.size(-1)}, 0.5f, 1.f));
    INFO(x.host.str() << " strides " << rt::shape_str(x.host.strides()));
    OPCHECK_MATCH(ctx, rt::rms_norm(ctx, x.dev, w.dev, 1e-6f), rt::rms_norm(cpu, x.host, w.host, 1e-6f),
                  opcheck::tolerance(ctx));
    OPCHECK_MATCH(ctx, rt::rms_norm(ctx, x.dev, {}, 0.25f), rt::rms_norm(cpu, x.host, {}, 0.25f), opcheck::tolerance(ctx));
  }
}
OPCHECK_DTYPES("norm.rms_norm_rows", rms_norm_rows)

void softmax_rows(DType dtype) {
  DITRUN_GPU_OR_SKIP(ctx, dtype);
  const rt::Context& cpu = test::cpu_context();
  rt::TorchGenerator gen(203);
  for (const View& x : row_views(ctx, gen)) {
    INFO(x.host.str() << " strides " << rt::shape_str(x.host.strides()));
    OPCHECK_MATCH(ctx, rt::softmax(ctx, x.dev), rt::softmax(cpu, x.host), opcheck::tolerance(ctx));
  }
  // Large logits, and a fully masked row (all −inf), which gives zeros.
  Tensor logits = opcheck::randn(gen, {3, 40}, 8.f);
  for (int64_t j = 0; j < 40; ++j) logits.data<float>()[40 + j] = -INFINITY;
  const auto x = opcheck::input(ctx, logits);
  OPCHECK_MATCH(ctx, rt::softmax(ctx, x.dev), rt::softmax(cpu, x.host), opcheck::tolerance(ctx));
}
OPCHECK_DTYPES("norm.softmax_rows", softmax_rows)

void group_norm_shapes(DType dtype) {
  DITRUN_GPU_OR_SKIP(ctx, dtype);
  const rt::Context& cpu = test::cpu_context();
  rt::TorchGenerator gen(204);
  struct Case {
    Shape shape;
    int64_t groups;
  };
  // Odd spatial (element path), a VAE-like block (packed, many blocks per group), 1-D spatial, no
  // spatial dims, one group, and empty.
  const Case cases[] = {{{2, 6, 5, 7}, 3}, {{1, 64, 256, 256}, 32}, {{2, 8, 16}, 4}, {{3, 4}, 2}, {{1, 3, 9, 8}, 1},
                        {{0, 4, 3}, 2}};
  for (const Case& k : cases) {
    const auto x = opcheck::input(ctx, opcheck::randn(gen, k.shape, 2.f, 1.f));
    const int64_t c = k.shape[1];
    const auto w = opcheck::input(ctx, opcheck::randn(gen, {c}, 0.5f, 1.f)), b = opcheck::input(ctx, gen.randn({c}));
    INFO(x.host.str() << " in " << k.groups << " groups");
    OPCHECK_MATCH(ctx, rt::group_norm(ctx, x.dev, k.groups, w.dev, b.dev, 1e-6f),
                  rt::group_norm(cpu, x.host, k.groups, w.host, b.host, 1e-6f), opcheck::tolerance(ctx));
    OPCHECK_MATCH(ctx, rt::group_norm(ctx, x.dev, k.groups, {}, {}, 1e-5f),
                  rt::group_norm(cpu, x.host, k.groups, {}, {}, 1e-5f), opcheck::tolerance(ctx));
  }
  // A channels-last tensor viewed as [N, C, H, W] (not contiguous).
  const auto nhwc = opcheck::input(ctx, opcheck::randn(gen, {2, 5, 7, 6}, 1.f, -2.f));
  OPCHECK_MATCH(ctx, rt::group_norm(ctx, nhwc.dev.permute({0, 3, 1, 2}), 3, {}, {}, 1e-6f),
                rt::group_norm(cpu, nhwc.host.permute({0, 3, 1, 2}), 3, {}, {}, 1e-6f), opcheck::tolerance(ctx));
}
OPCHECK_DTYPES("norm.group_norm_shapes", group_norm_shapes)

}  // namespace
