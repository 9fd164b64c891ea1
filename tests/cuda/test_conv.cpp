// cuDNN conv2d against the CPU reference (im2col + sgemm), fed the inputs exactly as the GPU stores them
// (op_check.h). Tolerances (relative L2): f32 1e-4 (plain f32 FMA engines; tensor-core/TF32, FFT and
// Winograd engines are deselected); bf16/f16 1e-2 (f32 accumulation, output rounded: ~2^-9 per element).
#include <cmath>
#include <string>

#include "harness/gpu.h"
#include "op_check.h"
#include "ops.h"
#include "rng.h"

#include <catch2/catch.hpp>

using rt::DType;
using rt::Tensor;

namespace {

double conv_tolerance(DType dt) { return dt == DType::F32 ? 1e-4 : 1e-2; }

struct ConvCase {
  int64_t n, c, h, w, o, k, stride, pad;
  bool bias;
  std::string str() const {
    return "x [" + std::to_string(n) + ", " + std::to_string(c) + ", " + std::to_string(h) + ", " + std::to_string(w) +
           "] w [" + std::to_string(o) + ", " + std::to_string(c) + ", " + std::to_string(k) + ", " + std::to_string(k) +
           "] stride " + std::to_string(stride) + " pad " + std::to_string(pad) + (bias ? " +bias" : "");
  }
};

// Runs one case on both backends; with `channels_last_input` the GPU gets the input as an NCHW view of NHWC memory.
void check_conv(const rt::Context& gpu, const ConvCase& c, uint64_t seed, bool channels_last_input = false) {
  rt::TorchGenerator gen(seed);
  const rt::Context& cpu = test::cpu_context();
  // Weights scaled by 1/sqrt(fan-in) keep outputs O(1), as in a trained network.
  const float scale = float(1.0 / std::sqrt(double(c.c * c.k * c.k)));
  const Tensor x = opcheck::input(gpu, gen.randn({c.n, c.c, c.h, c.w})).host;
  const Tensor w = opcheck::input(gpu, rt::affine(cpu, gen.randn({c.o, c.c, c.k, c.k}), scale, 0.f)).host;
  const Tensor b = c.bias ? opcheck::input(gpu, gen.randn({c.o})).host : Tensor();
  // channels-last input: the device holds NHWC memory and the op sees its NCHW permuted view.
  const Tensor x_d = channels_last_input ? rt::to_ctx(gpu, x.permute({0, 2, 3, 1}).contiguous()).permute({0, 3, 1, 2})
                                         : rt::to_ctx(gpu, x);
  const Tensor got_d = rt::conv2d(gpu, x_d, rt::to_ctx(gpu, w), c.bias ? rt::to_ctx(gpu, b) : Tensor(), c.stride, c.pad);
  REQUIRE(got_d.dtype() == gpu.dtype());
  REQUIRE(got_d.is_contiguous());
  INFO(c.str() << (channels_last_input ? " (channels-last input)" : ""));
  OPCHECK_MATCH(gpu, got_d, rt::conv2d(cpu, x, w, b, c.stride, c.pad), conv_tolerance(gpu.dtype()));
}

// 1x1 and 3x3, stride 1 and 2, padding 0 and 1, odd channel counts and odd spatial sizes.
const ConvCase kSmallCases[] = {
    {2, 3, 9, 7, 5, 3, 1, 1, true},  {2, 5, 8, 11, 3, 3, 2, 1, false}, {1, 4, 7, 7, 6, 1, 1, 0, true},
    {2, 5, 9, 9, 8, 3, 2, 0, true},  {1, 16, 5, 6, 8, 1, 2, 0, false}, {1, 8, 6, 5, 16, 3, 1, 0, false},
    {3, 7, 1, 1, 9, 1, 1, 0, true},  {1, 3, 4, 4, 5, 3, 1, 1, false},
};

}  // namespace

static void small_cases(DType dt) {
  DITRUN_GPU_OR_SKIP(ctx, dt);
  uint64_t seed = 100;
  for (const ConvCase& c : kSmallCases) check_conv(ctx, c, seed++);
}
OPCHECK_DTYPES("conv.small_cases", small_cases)

static void strided_inputs(DType dt) {
  DITRUN_GPU_OR_SKIP(ctx, dt);
  check_conv(ctx, {2, 5, 9, 7, 3, 3, 1, 1, true}, 300, true);
  check_conv(ctx, {1, 16, 8, 8, 16, 3, 2, 1, false}, 301, true);
  // A sliced (offset, non-contiguous) input and weight.
  const rt::Context& cpu = test::cpu_context();
  rt::TorchGenerator gen(302);
  const auto x = opcheck::input(ctx, gen.randn({2, 7, 11, 9}));
  const auto w = opcheck::input(ctx, rt::affine(cpu, gen.randn({6, 9, 3, 3}), 0.1f, 0.f));
  OPCHECK_MATCH(ctx, rt::conv2d(ctx, x.dev.slice(1, 1, 6).slice(3, 1, 9), w.dev.slice(1, 2, 7), Tensor(), 1, 1),
                rt::conv2d(cpu, x.host.slice(1, 1, 6).slice(3, 1, 9), w.host.slice(1, 2, 7), Tensor(), 1, 1),
                conv_tolerance(dt));
}
OPCHECK_DTYPES("conv.strided_inputs", strided_inputs)

// The VAE decoder's kinds of convolution, at small odd sizes: 3x3 C=O=128, 1x1 128->256 (a shortcut),
// conv_in 16->128 and conv_out 128->3 (O = 3 is not a multiple of 8), and the same problem twice (the
// cached graph).
TEST_CASE("conv.vae_kinds_bf16", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  check_conv(ctx, {1, 128, 33, 31, 128, 3, 1, 1, true}, 400);
  check_conv(ctx, {1, 128, 17, 19, 256, 1, 1, 0, true}, 401);
  check_conv(ctx, {1, 16, 16, 12, 128, 3, 1, 1, true}, 402);
  check_conv(ctx, {1, 128, 35, 29, 3, 3, 1, 1, true}, 403);
  check_conv(ctx, {1, 128, 35, 29, 3, 3, 1, 1, true}, 404);
}

TEST_CASE("conv.vae_kinds_f32", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::F32);
  check_conv(ctx, {1, 128, 21, 19, 128, 3, 1, 1, true}, 500);
  check_conv(ctx, {1, 128, 23, 17, 3, 3, 1, 1, true}, 501);
}
