// sattn::attention on the GPU (cuDNN fused SDPA and the naive CUDA reference) against the CPU reference
// fed the very values the GPU holds (the bf16/f16-rounded inputs, converted back to f32).
// Tolerances, relative L2 over the whole output:
// - f32 (CUDA reference): <= 1e-4, GEMM class: two f32 GEMMs without TF32 and an f32 softmax; the CPU
//   differs only in summation order.
// - bf16/f16: <= 1e-2, attention class: both GPU kernels round P to the 16-bit type before P·V and round
//   O on output (2^-9 relative each in bf16), which the f32 CPU does not. On top, flash-attention's
//   relative rule (design.md §3.4): error(cuDNN) <= 2 x error(the CUDA reference run in the same dtype, a
//   naive implementation with the same roundings) + 1e-3.
#include <cmath>
#include <cstdio>
#include <string>

#include "harness/compare.h"
#include "harness/gpu.h"
#include "ops.h"
#include "rng.h"
#include "sparse_attention/attention.h"
#include "sparse_attention/kernels/dense/select.h"
#if DITRUN_WITH_CUDA
#include "cuda/device_state.h"
#include "sparse_attention/kernels/dense/cuda/cudnn_sdpa_fp8.h"
#include "sparse_attention/reference/cuda/dense_cuda.h"
#endif

#include <catch2/catch.hpp>

using rt::DType;
using rt::Tensor;
using sattn::DenseKernel;

namespace {

constexpr double kTolF32 = 1e-4;
constexpr double kTol16 = 1e-2;
constexpr double kRelativeRuleAtol = 1e-3;

struct Case {
  int64_t b = 1, lq = 0, lk = 0, h = 1, d = 64, dv = 64;
  float q_amp = 1.f;         // multiplies q, keeping scale·q·k moderate when scale = 1 (T5)
  float scale = 0.f;
  bool causal = false;
  int bias_rank = 0;         // 0: none, 3: [H, Lq, Lk], 4: [B, H, Lq, Lk]
  DType bias_dtype = DType::BF16;  // on the device; ignored without a bias
  bool fused = false;        // q, k, v are slices of one [B, L, 3, H, D] tensor (Lq == Lk, D == Dv)
};

// Device params and the CPU params holding the same values in f32.
struct Problem {
  sattn::AttentionParams gpu, cpu;
};

Tensor scaled(const Tensor& x, float s) { return s == 1.f ? x : rt::affine(test::cpu_context(), x, s, 0.f); }

Problem make_problem(const rt::Context& ctx, const Case& c, uint64_t seed) {
  rt::TorchGenerator gen(seed);
  Problem p;
  if (c.fused) {
    const Tensor qkv = rt::to_ctx(ctx, gen.randn({c.b, c.lq, 3, c.h, c.d}));
    const Tensor host = rt::to_host(ctx, qkv);
    p.gpu.q = qkv.select(2, 0), p.gpu.k = qkv.select(2, 1), p.gpu.v = qkv.select(2, 2);
    p.cpu.q = host.select(2, 0), p.cpu.k = host.select(2, 1), p.cpu.v = host.select(2, 2);
  } else {
    p.gpu.q = rt::to_ctx(ctx, scaled(gen.randn({c.b, c.lq, c.h, c.d}), c.q_amp));
    p.gpu.k = rt::to_ctx(ctx, gen.randn({c.b, c.lk, c.h, c.d}));
    p.gpu.v = rt::to_ctx(ctx, gen.randn({c.b, c.lk, c.h, c.dv}));
    p.cpu.q = rt::to_host(ctx, p.gpu.q), p.cpu.k = rt::to_host(ctx, p.gpu.k), p.cpu.v = rt::to_host(ctx, p.gpu.v);
  }
  if (c.bias_rank != 0) {
    const rt::Shape shape = c.bias_rank == 3 ? rt::Shape{c.h, c.lq, c.lk} : rt::Shape{c.b, c.h, c.lq, c.lk};
    p.gpu.bias = rt::to_device(ctx, scaled(gen.randn(shape), 2.f), ctx.device(), c.bias_dtype);
    p.cpu.bias = rt::to_host(ctx, p.gpu.bias);
  }
  for (sattn::AttentionParams* a : {&p.gpu, &p.cpu}) {
    a->scale = c.scale;
    a->mask = c.causal ? sattn::MaskKind::Causal : sattn::MaskKind::None;
  }
  return p;
}

bool all_finite(const Tensor& host) {
  for (float x : host.to_vector())
    if (!std::isfinite(x)) return false;
  return true;
}

// Runs `kernel` on the GPU and returns its error against the CPU output `want`.
test::Diff run_on_gpu(const rt::Context& ctx, sattn::AttentionParams p, DenseKernel kernel, const Tensor& want) {
  p.kernel = kernel;
  const std::string what = sattn::describe_dense_kernel(ctx, p);
  const Tensor got = rt::to_host(ctx, sattn::attention(ctx, p));
  REQUIRE(got.shape() == want.shape());
  REQUIRE(all_finite(got));
  const test::Diff d = test::compare(got, want);
  std::printf("  %-10s %s: %s\n", sattn::dense_kernel_name(kernel), what.c_str(), d.str().c_str());
  return d;
}

DenseKernel selected(const rt::Context& ctx, const sattn::AttentionParams& p, std::string* why = nullptr) {
  std::string reason;
  const auto k = sattn::select_dense_kernel(ctx, p, &reason);
  if (why) *why = reason;
  INFO("selection refused: " << reason);
  REQUIRE(k.has_value());
  return *k;
}

// A bf16/f16 case cuDNN must run: auto picks it; cuDNN and the same-dtype CUDA reference both meet the
// 16-bit tolerance, and cuDNN meets the relative rule against the reference.
// `extra_atol` covers what the reference does not share with cuDNN, e.g. an f32 bias that cuDNN gets
// rounded to bf16 (up to 2^-9 relative per score).
void check_cudnn_case(const rt::Context& ctx, const Problem& p, double extra_atol = 0) {
  std::string why;
  INFO("q " << p.gpu.q.str() << " k " << p.gpu.k.str() << " v " << p.gpu.v.str());
  REQUIRE(selected(ctx, p.gpu, &why) == DenseKernel::Cudnn);
  const Tensor want = sattn::attention(test::cpu_context(), p.cpu);
  const test::Diff fast = run_on_gpu(ctx, p.gpu, DenseKernel::Auto, want);
  const test::Diff naive = run_on_gpu(ctx, p.gpu, DenseKernel::Reference, want);
  CHECK(fast.rel_l2 <= kTol16);
  CHECK(naive.rel_l2 <= kTol16);
  CHECK(fast.rel_l2 <= 2 * naive.rel_l2 + kRelativeRuleAtol + extra_atol);
}

}  // namespace

TEST_CASE("attention.cudnn_flux_joint_fused_qkv", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  SECTION("B=1 L=1024+77 H=3 D=128") {
    Case c;
    c.lq = c.lk = 1024 + 77, c.h = 3, c.d = c.dv = 128, c.fused = true;
    const Problem p = make_problem(ctx, c, 11);
    REQUIRE_FALSE(p.gpu.q.is_contiguous());
    check_cudnn_case(ctx, p);
    // The cached plan runs again bit for bit (cuDNN's forward is deterministic).
    const Tensor a = rt::to_host(ctx, sattn::attention(ctx, p.gpu));
    const Tensor b = rt::to_host(ctx, sattn::attention(ctx, p.gpu));
    CHECK(test::compare(a, b).max_abs == 0.0);
  }
  SECTION("B=2 L=333 H=24 D=128") {
    Case c;
    c.b = 2, c.lq = c.lk = 333, c.h = 24, c.d = c.dv = 128, c.fused = true;
    check_cudnn_case(ctx, make_problem(ctx, c, 12));
  }
}

TEST_CASE("attention.cudnn_cross_length_f16", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::F16);
  Case c;
  c.b = 2, c.h = 5, c.d = c.dv = 64;
  SECTION("Lq=333 Lk=97") {
    c.lq = 333, c.lk = 97;
    check_cudnn_case(ctx, make_problem(ctx, c, 21));
  }
  SECTION("Lq=97 Lk=333 explicit scale") {
    c.lq = 97, c.lk = 333, c.scale = 0.09f;
    check_cudnn_case(ctx, make_problem(ctx, c, 22));
  }
}

TEST_CASE("attention.cudnn_t5_relative_bias", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  // T5: scale 1, so q is shrunk to keep q·k near unit variance (D=64: 64·0.125² = 1).
  Case c;
  c.b = 2, c.lq = c.lk = 129, c.h = 6, c.d = c.dv = 64, c.q_amp = 0.125f, c.scale = 1.f, c.bias_rank = 3;
  SECTION("[H, L, L] bf16, rows not 16-byte aligned (padded copy)") { check_cudnn_case(ctx, make_problem(ctx, c, 31)); }
  SECTION("[H, L, L] bf16, L=128 (used in place)") {
    c.lq = c.lk = 128;
    check_cudnn_case(ctx, make_problem(ctx, c, 32));
  }
  SECTION("[B, H, L, L] f32 (converted)") {
    c.bias_rank = 4, c.bias_dtype = DType::F32;
    check_cudnn_case(ctx, make_problem(ctx, c, 33), /*extra_atol=*/2e-3);
  }
  SECTION("[H, L, L] broadcast over heads, [B, H, L, L] broadcast over batch (stride 0)") {
    Problem p = make_problem(ctx, c, 34);
    p.gpu.bias = p.gpu.bias.slice(0, 0, 1).expand({c.h, c.lq, c.lk});
    p.cpu.bias = rt::to_host(ctx, p.gpu.bias);
    check_cudnn_case(ctx, p);
    Problem q = make_problem(ctx, c, 35);
    q.gpu.bias = q.gpu.bias.unsqueeze(0).expand({c.b, c.h, c.lq, c.lk});
    q.cpu.bias = rt::to_host(ctx, q.gpu.bias);
    check_cudnn_case(ctx, q);
  }
}

TEST_CASE("attention.cudnn_clip_causal", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  Case c;
  c.b = 2, c.h = 12, c.d = c.dv = 64, c.causal = true;
  SECTION("L=77") {
    c.lq = c.lk = 77;
    check_cudnn_case(ctx, make_problem(ctx, c, 41));
  }
  // Top-left alignment when Lq != Lk: query i sees keys j <= i. Whichever kernel runs must agree.
  const int64_t lengths[2][2] = {{50, 77}, {77, 50}};
  for (const auto& [lq, lk] : lengths) {
    c.lq = lq, c.lk = lk;
    const Problem p = make_problem(ctx, c, 42 + uint64_t(lq));
    const Tensor want = sattn::attention(test::cpu_context(), p.cpu);
    CHECK(run_on_gpu(ctx, p.gpu, DenseKernel::Auto, want).rel_l2 <= kTol16);
    CHECK(run_on_gpu(ctx, p.gpu, DenseKernel::Reference, want).rel_l2 <= kTol16);
  }
}

TEST_CASE("attention.cudnn_misaligned_views_are_copied", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  const int64_t b = 1, l = 91, h = 4, d = 64;
  rt::TorchGenerator gen(51);
  // q starts one element into its buffer (a 2-byte offset); k's head stride is 68 elements (136 bytes).
  const Tensor qbuf = rt::to_ctx(ctx, gen.randn({b, l, h, d + 8})), kbuf = rt::to_ctx(ctx, gen.randn({b, l, h, d + 4}));
  sattn::AttentionParams g;
  g.q = qbuf.slice(3, 1, 1 + d);
  g.k = kbuf.slice(3, 0, d);
  g.v = rt::to_ctx(ctx, gen.randn({b, l, h, d}));
  sattn::AttentionParams cpu;
  cpu.q = rt::to_host(ctx, g.q), cpu.k = rt::to_host(ctx, g.k), cpu.v = rt::to_host(ctx, g.v);
  check_cudnn_case(ctx, Problem{g, cpu});
}

TEST_CASE("attention.reference_vae_single_head", "[cuda]") {
  Case c;
  c.lq = c.lk = 1024 + 17, c.h = 1, c.d = c.dv = 512;
  SECTION("bf16: auto passes over cuDNN (head dim 512)") {
    DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
    const Problem p = make_problem(ctx, c, 61);
    std::string why;
    REQUIRE(selected(ctx, p.gpu, &why) == DenseKernel::Reference);
    CHECK(why.find("head dim 512") != std::string::npos);
    const Tensor want = sattn::attention(test::cpu_context(), p.cpu);
    CHECK(run_on_gpu(ctx, p.gpu, DenseKernel::Auto, want).rel_l2 <= kTol16);
  }
  SECTION("f32") {
    DITRUN_GPU_OR_SKIP(ctx, DType::F32);
    const Problem p = make_problem(ctx, c, 62);
    REQUIRE(selected(ctx, p.gpu) == DenseKernel::Reference);
    const Tensor want = sattn::attention(test::cpu_context(), p.cpu);
    CHECK(run_on_gpu(ctx, p.gpu, DenseKernel::Auto, want).rel_l2 <= kTolF32);
  }
}

#if DITRUN_WITH_CUDA
TEST_CASE("attention.reference_f32_bands_bias_causal_masked_row", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::F32);
  // Odd everything: D=40 and Dv=24 (not cuDNN shapes), a batched bias, causal, and a score budget of
  // 37 query rows so bands start mid-sequence.
  Case c;
  c.b = 2, c.lq = 301, c.lk = 301, c.h = 3, c.d = 40, c.dv = 24, c.causal = true, c.bias_rank = 4,
  c.bias_dtype = DType::F32;
  Problem p = make_problem(ctx, c, 71);
  // Query 200 of batch 1, head 2 sees only -inf: its output is zeros, as the CPU defines it.
  Tensor bias_host = p.cpu.bias.contiguous().clone();
  for (int64_t j = 0; j < c.lk; ++j) bias_host.data<float>()[((1 * c.h + 2) * c.lq + 200) * c.lk + j] = -INFINITY;
  p.cpu.bias = bias_host;
  p.gpu.bias = rt::to_device(ctx, bias_host, ctx.device(), DType::F32);
  const Tensor want = sattn::attention(test::cpu_context(), p.cpu);
  const int64_t ld = (c.lk + 7) / 8 * 8;
  const Tensor got = rt::to_host(ctx, sattn::reference::dense_attention_cuda(ctx, p.gpu, c.h * ld * 4 * 37));
  REQUIRE(all_finite(got));
  const test::Diff d = test::compare(got, want);
  INFO(d.str());
  CHECK(d.rel_l2 <= kTolF32);
  for (int64_t i = 0; i < c.dv; ++i) CHECK(got.at({1, 200, 2, i}) == 0.f);
}
#endif

TEST_CASE("attention.forced_cudnn_refusals", "[cuda]") {
  // Parsing the kernel names; a CPU call that forces cuDNN is refused with a reason.
  DenseKernel k = DenseKernel::Auto;
  REQUIRE(sattn::parse_dense_kernel("cudnn", &k));
  CHECK(k == DenseKernel::Cudnn);
  CHECK_FALSE(sattn::parse_dense_kernel("flash", &k));
  CHECK(std::string(sattn::dense_kernel_name(DenseKernel::Reference)) == "reference");
  rt::TorchGenerator gen(81);
  sattn::AttentionParams cpu;
  cpu.q = gen.randn({1, 5, 2, 8}), cpu.k = gen.randn({1, 6, 2, 8}), cpu.v = gen.randn({1, 6, 2, 8});
  cpu.kernel = DenseKernel::Cudnn;
  std::string why;
  CHECK_FALSE(sattn::select_dense_kernel(test::cpu_context(), cpu, &why).has_value());
  CHECK(why.find("CUDA") != std::string::npos);
  CHECK(sattn::describe_dense_kernel(test::cpu_context(), cpu).rfind("cannot run: ", 0) == 0);
  cpu.kernel = DenseKernel::Auto;
  CHECK(sattn::describe_dense_kernel(test::cpu_context(), cpu) == "cpu_reference");

  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  auto refusal = [&](sattn::AttentionParams p) {
    p.kernel = DenseKernel::Cudnn;
    std::string reason;
    const auto chosen = sattn::select_dense_kernel(ctx, p, &reason);
    CHECK_FALSE(chosen.has_value());
    CHECK(sattn::describe_dense_kernel(ctx, p) == "cannot run: " + reason);
    return reason;
  };
  sattn::AttentionParams p;
  p.q = rt::to_ctx(ctx, gen.randn({1, 33, 2, 64})), p.k = rt::to_ctx(ctx, gen.randn({1, 33, 2, 64}));
  p.v = rt::to_ctx(ctx, gen.randn({1, 33, 2, 64}));
  // f32 tensors on the GPU.
  sattn::AttentionParams f32 = p;
  for (Tensor* t : {&f32.q, &f32.k, &f32.v}) *t = rt::to_device(ctx, *t, ctx.device(), DType::F32);
  CHECK(refusal(f32).find("bf16 or f16") != std::string::npos);
  // Head dim 512 (the VAE's).
  sattn::AttentionParams wide = p;
  wide.q = rt::to_ctx(ctx, gen.randn({1, 33, 1, 512})), wide.k = rt::to_ctx(ctx, gen.randn({1, 33, 1, 512}));
  wide.v = rt::to_ctx(ctx, gen.randn({1, 33, 1, 512}));
  CHECK(refusal(wide).find("head dim 512") != std::string::npos);
  // Head dim not a multiple of 8.
  sattn::AttentionParams odd = p;
  odd.q = rt::to_ctx(ctx, gen.randn({1, 33, 2, 60})), odd.k = rt::to_ctx(ctx, gen.randn({1, 33, 2, 60}));
  odd.v = rt::to_ctx(ctx, gen.randn({1, 33, 2, 60}));
  CHECK(refusal(odd).find("head dim 60") != std::string::npos);
  // A v head dim that differs from q's.
  sattn::AttentionParams narrow_v = p;
  narrow_v.v = rt::to_ctx(ctx, gen.randn({1, 33, 2, 32}));
  CHECK(refusal(narrow_v).find("equal q/k and v head dims") != std::string::npos);
  // The same calls in auto mode fall back to the reference and say why in the description.
  f32.kernel = DenseKernel::Auto;
  CHECK(sattn::describe_dense_kernel(ctx, f32).rfind("cuda_reference (cuDNN passed over: ", 0) == 0);
  // Forcing the reference on a call cuDNN could run is honoured.
  p.kernel = DenseKernel::Reference;
  CHECK(sattn::describe_dense_kernel(ctx, p) == "cuda_reference");
}

#if DITRUN_WITH_CUDA
// bench-attention's FP8 yardstick (cuDNN's e4m3 SDPA) computes attention: against the CPU reference on the
// e4m3-rounded inputs, with q and v given through scales other than 1. Bound 0.1 relative L2: P and O are
// rounded to e4m3 inside (3 mantissa bits, a relative error up to 1/16 each, about 3.6% RMS).
TEST_CASE("attention.cudnn_fp8_yardstick", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  const int64_t b = 1, l = 1000, h = 2, d = 128;
  rt::TorchGenerator gen(17);
  const Tensor q = gen.randn({b, l, h, d}), k = gen.randn({b, l, h, d}), v = gen.randn({b, l, h, d});
  namespace kc = sattn::kernels::cuda;
  kc::Fp8SdpaScales scales;
  scales.descale_q = 0.5f, scales.descale_v = 0.25f, scales.scale_o = 64.f;
  auto fp8 = [&](const Tensor& x, float descale) {  // host e4m3 holding x / descale
    return rt::affine(test::cpu_context(), x, 1.f / descale, 0.f).to(DType::F8E4M3);
  };
  const Tensor q8 = fp8(q, scales.descale_q), k8 = fp8(k, 1.f), v8 = fp8(v, scales.descale_v);
  sattn::AttentionParams cpu;  // the values the GPU sees
  cpu.q = rt::affine(test::cpu_context(), q8.to(DType::F32), scales.descale_q, 0.f);
  cpu.k = k8.to(DType::F32);
  cpu.v = rt::affine(test::cpu_context(), v8.to(DType::F32), scales.descale_v, 0.f);
  const Tensor want = sattn::attention(test::cpu_context(), cpu);

  const float scale = 1.f / std::sqrt(float(d));
  kc::CudnnSdpaFp8 sdpa(ctx, b, l, h, d, scale, scales);
  const rt::cuda::DeviceState& dev = ctx.cuda();
  if (dev.cc_major < 9) {  // cuDNN's FP8 attention is Hopper and newer
    CHECK_FALSE(sdpa.refusal().empty());
    return;
  }
  INFO(sdpa.refusal());
  REQUIRE(sdpa.refusal().empty());
  auto up = [&](const Tensor& x) { return rt::to_device(ctx, x, ctx.device(), DType::F8E4M3); };
  const Tensor o8 = sdpa.run(ctx, up(q8), up(k8), up(v8));
  const Tensor got = rt::affine(test::cpu_context(),
                                rt::to_device(ctx, o8, rt::Device::cpu(), DType::F8E4M3).to(DType::F32),
                                1.f / scales.scale_o, 0.f);
  REQUIRE(all_finite(got));
  const test::Diff diff = test::compare(got, want);
  std::printf("  cuDNN FP8 SDPA vs CPU on the e4m3 inputs: %s\n", diff.str().c_str());
  CHECK(diff.rel_l2 <= 0.1);
}
#endif
