// add/sub/mul (broadcast, strided views, mixed dtypes, empty), the unary activations and affine on the
// GPU against the CPU reference on the same (rounded) values. Tolerances: op_check.h.
#include <utility>
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

using BinaryFn = Tensor (*)(const rt::Context&, const Tensor&, const Tensor&);
using UnaryFn = Tensor (*)(const rt::Context&, const Tensor&);

struct Binary {
  const char* name;
  BinaryFn fn;
};
const Binary kBinary[] = {{"add", rt::add}, {"sub", rt::sub}, {"mul", rt::mul}};

struct Unary {
  const char* name;
  UnaryFn fn;
};
const Unary kUnary[] = {{"silu", rt::silu}, {"gelu_tanh", rt::gelu_tanh}, {"gelu_erf", rt::gelu_erf}, {"quick_gelu", rt::quick_gelu}};

void binary_shapes(DType dtype) {
  DITRUN_GPU_OR_SKIP(ctx, dtype);
  const rt::Context& cpu = test::cpu_context();
  rt::TorchGenerator gen(101);
  // Same shape (odd, and packable), row broadcasts (bias, gate), both sides broadcast, a scalar, a
  // per-channel broadcast over an image, and an empty output.
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 5, 37}, {3, 5, 37}}, {{4, 1024}, {4, 1024}}, {{2, 7, 48}, {48}},      {{2, 7, 48}, {2, 1, 48}},
      {{3, 4, 9}, {3, 1, 1}},   {{5, 1}, {1, 6}},       {{17}, {1}},             {{2, 3, 64, 64}, {1, 3, 1, 1}},
      {{48}, {2, 7, 48}},       {{0, 5}, {5}}};
  for (const auto& [sa, sb] : shapes) {
    const auto a = opcheck::input(ctx, gen.randn(sa)), b = opcheck::input(ctx, gen.randn(sb));
    for (const Binary& op : kBinary) {
      INFO(op.name << " " << rt::shape_str(sa) << " with " << rt::shape_str(sb));
      OPCHECK_MATCH(ctx, op.fn(ctx, a.dev, b.dev), op.fn(cpu, a.host, b.host), opcheck::tolerance(ctx));
    }
  }
}
OPCHECK_DTYPES("elementwise.binary_shapes", binary_shapes)

void binary_views(DType dtype) {
  DITRUN_GPU_OR_SKIP(ctx, dtype);
  const rt::Context& cpu = test::cpu_context();
  rt::TorchGenerator gen(102);
  const auto big = opcheck::input(ctx, gen.randn({6, 10, 40}));
  const auto other = opcheck::input(ctx, gen.randn({32, 6, 10}));
  // Permuted with an odd offset (element path), sliced at an aligned offset (pack path), and a view
  // whose last dim is strided.
  const Tensor a_odd_dev = big.dev.permute({1, 0, 2}).slice(2, 3, 35), a_odd = big.host.permute({1, 0, 2}).slice(2, 3, 35);
  const Tensor a_al_dev = big.dev.permute({1, 0, 2}).slice(2, 8, 40), a_al = big.host.permute({1, 0, 2}).slice(2, 8, 40);
  const Tensor b_dev = other.dev.permute({2, 1, 0}), b = other.host.permute({2, 1, 0});  // [10, 6, 32]
  for (const Binary& op : kBinary) {
    INFO(op.name);
    OPCHECK_MATCH(ctx, op.fn(ctx, a_odd_dev, b_dev), op.fn(cpu, a_odd, b), opcheck::tolerance(ctx));
    OPCHECK_MATCH(ctx, op.fn(ctx, a_al_dev, a_odd_dev), op.fn(cpu, a_al, a_odd), opcheck::tolerance(ctx));
    OPCHECK_MATCH(ctx, op.fn(ctx, a_al_dev, a_al_dev), op.fn(cpu, a_al, a_al), opcheck::tolerance(ctx));
    // A row of the view broadcast against the whole view.
    OPCHECK_MATCH(ctx, op.fn(ctx, a_al_dev, a_al_dev.select(0, 2)), op.fn(cpu, a_al, a_al.select(0, 2)),
                  opcheck::tolerance(ctx));
  }
}
OPCHECK_DTYPES("elementwise.binary_views", binary_views)

// b in another float dtype than a: the output takes a's dtype.
void binary_mixed_dtypes(DType dtype) {
  DITRUN_GPU_OR_SKIP(ctx, dtype);
  const rt::Context& cpu = test::cpu_context();
  rt::TorchGenerator gen(103);
  const DType b_dtype = dtype == DType::F32 ? DType::BF16 : DType::F32;
  const auto a = opcheck::input(ctx, gen.randn({3, 8, 64}));
  const Tensor b_dev = rt::to_device(ctx, gen.randn({8, 64}), ctx.device(), b_dtype);
  const Tensor b = rt::to_host(ctx, b_dev);
  for (const Binary& op : kBinary) {
    INFO(op.name);
    const Tensor got = op.fn(ctx, a.dev, b_dev);
    CHECK(got.dtype() == dtype);
    OPCHECK_MATCH(ctx, got, op.fn(cpu, a.host, b), opcheck::tolerance(ctx));
  }
}
OPCHECK_DTYPES("elementwise.binary_mixed_dtypes", binary_mixed_dtypes)

void unary_and_affine(DType dtype) {
  DITRUN_GPU_OR_SKIP(ctx, dtype);
  const rt::Context& cpu = test::cpu_context();
  rt::TorchGenerator gen(104);
  const auto wide = opcheck::input(ctx, opcheck::randn(gen, {3, 1000}, 3.f));
  const auto odd = opcheck::input(ctx, opcheck::randn(gen, {7, 13}, 4.f));
  const auto t = opcheck::input(ctx, opcheck::randn(gen, {13, 24}, 2.f));
  const std::vector<std::pair<Tensor, Tensor>> xs = {
      {wide.dev, wide.host}, {odd.dev, odd.host},
      {t.dev.transpose(0, 1), t.host.transpose(0, 1)},        // last dim strided
      {t.dev.slice(1, 8, 24), t.host.slice(1, 8, 24)},        // rows at an aligned offset
      {odd.dev.slice(0, 2, 2), odd.host.slice(0, 2, 2)}};     // empty
  for (size_t i = 0; i < xs.size(); ++i) {
    const auto& [dev, host] = xs[i];
    for (const Unary& op : kUnary) {
      INFO(op.name << " on input " << i << " " << host.str());
      OPCHECK_MATCH(ctx, op.fn(ctx, dev), op.fn(cpu, host), opcheck::tolerance(ctx));
    }
    INFO("affine on input " << i);
    OPCHECK_MATCH(ctx, rt::affine(ctx, dev, 0.5f, -1.25f), rt::affine(cpu, host, 0.5f, -1.25f), opcheck::tolerance(ctx));
  }
}
OPCHECK_DTYPES("elementwise.unary_and_affine", unary_and_affine)

}  // namespace
