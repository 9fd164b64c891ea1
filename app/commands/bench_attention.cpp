// `ditrun bench-attention`: one attention problem (a token grid plus a text segment, heads x head dim),
// planned by each --method and run by the block-sparse kernel, against cuDNN's dense SDPA on the same
// q, k, v. Prints per method the tile density, the FLOP density, our time and effective TFLOP/s (on the
// visited tiles' FLOPs), cuDNN's dense time and the ratios the sparse-attention targets use
// (ours / cuDNN, and ours / (tile density x cuDNN), the target being <= 1.3), plus the host planning time
// and the one-time layout upload (lists and partial-tile masks). With --quant int8 | int8-fp8pv | int4 each layout
// also runs the quantized kernel (block_sparse_quant.h) and prints its time with and without the quantization
// pre-pass, the speed-ups over the bf16/f16 kernel on the same layout and its distance to it. --kernel picks
// the bf16/f16 block-sparse kernel (auto | sm80 | sm90 | sm90ws); `both` times sm80, sm90 and sm90ws on
// each layout, one row each, plus the relative L2 distance of sm90's and sm90ws's outputs to sm80's.
// --cudnn-fp8 also times cuDNN's FP8 dense attention (cudnn_sdpa_fp8.h), the yardstick for 8-bit attention.
// GPU only.
// Timing: every timed function first runs for --steady-seconds, so that each is timed in its own sustained
// power state (sustained_ms).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/commands/commands.h"
#include "app/commands/device_options.h"
#include "app/commands/exit_codes.h"
#include "base/out_of_memory.h"
#include "ops.h"
#include "sparse_attention/attention.h"
#include "sparse_attention/kernels/sparse/block_sparse.h"
#include "sparse_attention/kernels/sparse/block_sparse_quant.h"
#include "sparse_attention/methods/method_spec.h"
#include "sparse_attention/methods/plan.h"
#include "sparse_attention/quant.h"

#if DITRUN_WITH_CUDA
#include <cuda_runtime_api.h>

#include "cuda/device_state.h"
#include "sparse_attention/kernels/dense/cuda/cudnn_sdpa_fp8.h"
#endif

namespace app {

namespace {

struct BenchAttentionOptions {
  DeviceOptions device;
  std::string grid = "1x128x128";
  int64_t text = 512, text_valid = -1;
  bool text_after = false;
  int64_t heads = 24, dim = 128;
  std::vector<std::string> methods = {"dense"};
  std::string quant = "none";
  std::string kernel = "auto";
  int warmup = 3, repeat = 20;
  double steady_seconds = 2.0;
  bool cudnn_fp8 = false;
};

#if DITRUN_WITH_CUDA
// "TxHxW" or "HxW" -> grid; false when malformed.
bool parse_grid(const std::string& text, int64_t grid[3]) {
  std::vector<int64_t> v;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find('x', start), text.size());
    const std::string part = text.substr(start, end - start);
    if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos || part.size() > 9) return false;
    v.push_back(std::stoll(part));
    start = end + 1;
  }
  if (v.size() < 2 || v.size() > 3) return false;
  if (v.size() == 2) v.insert(v.begin(), 1);
  for (int a = 0; a < 3; ++a) {
    if (v[size_t(a)] < 1) return false;
    grid[a] = v[size_t(a)];
  }
  return true;
}

// Mean GPU time of f over `repeat` calls (CUDA events on the context's stream) after `warmup` calls.
double gpu_ms(const rt::Context& ctx, int warmup, int repeat, const std::function<void()>& f) {
  for (int i = 0; i < warmup; ++i) f();
  cudaStream_t stream = ctx.cuda().stream;
  cudaEvent_t start = nullptr, stop = nullptr;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start, stream);
  for (int i = 0; i < repeat; ++i) f();
  cudaEventRecord(stop, stream);
  cudaEventSynchronize(stop);
  float ms = 0.f;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return double(ms) / repeat;
}

// Runs f for `seconds` of wall time, then returns its mean GPU time as gpu_ms does. Under a sustained tensor
// load the H200 sits at its 690 W limit and its clock follows the running kernel's power (session 12 logged
// 1.53-1.74 GHz for cuDNN and 1.65-1.79 GHz for our kernel at that limit), and it takes about a second to
// get there; a few tens of milliseconds of calls, what a sparse row used to take, are timed in whatever state
// the previous row left. Each kernel is timed in its own sustained state: the throughput of running it.
double sustained_ms(const rt::Context& ctx, double seconds, int warmup, int repeat, const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
    for (int i = 0; i < 4; ++i) f();
    rt::synchronize(ctx);
  }
  return gpu_ms(ctx, warmup, repeat, f);
}

// Relative L2 distance of two device tensors of one shape (through the host, in double).
double rel_l2(const rt::Context& ctx, const rt::Tensor& a, const rt::Tensor& b) {
  const std::vector<float> x = rt::to_host(ctx, a).to_vector(), y = rt::to_host(ctx, b).to_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    num += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    den += double(y[i]) * y[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// cuDNN's FP8 dense attention on the same problem (q, k, v rounded to e4m3; they lie in [-1, 1], so unit
// scales), timed like cuDNN bf16: what 8-bit operands gain with NVIDIA's own kernel. The dense bf16 output
// sets the output scale (its largest magnitude onto 448) and is the reference of the distance printed.
// Text padding is not modelled (dense attends every key). False when cuDNN refused (after saying why).
bool cudnn_fp8_row(const rt::Context& ctx, const BenchAttentionOptions& o, const sattn::AttentionParams& p,
                   const rt::Tensor& cudnn_out, double cudnn_ms, double dense_flops) {
  namespace kc = sattn::kernels::cuda;
  const rt::Tensor ref = rt::to_host(ctx, cudnn_out);
  float amax = 0.f;
  for (const float x : ref.to_vector()) amax = std::max(amax, std::fabs(x));
  kc::Fp8SdpaScales scales;
  scales.scale_o = amax > 0.f ? 448.f / amax : 1.f;
  auto to_fp8 = [&](const rt::Tensor& t) {
    return rt::to_device(ctx, rt::to_host(ctx, t), ctx.device(), rt::DType::F8E4M3);
  };
  const rt::Tensor q8 = to_fp8(p.q), k8 = to_fp8(p.k), v8 = to_fp8(p.v);
  const float scale = p.scale != 0.f ? p.scale : 1.f / std::sqrt(float(o.dim));
  kc::CudnnSdpaFp8 fp8(ctx, p.q.size(0), p.q.size(1), p.q.size(2), p.q.size(3), scale, scales);
  if (!fp8.refusal().empty()) {
    std::fprintf(stderr, "ditrun bench-attention: --cudnn-fp8: %s\n", fp8.refusal().c_str());
    return false;
  }
  rt::Tensor o8;
  const double ms = sustained_ms(ctx, o.steady_seconds, o.warmup, o.repeat, [&] { o8 = fp8.run(ctx, q8, k8, v8); });
  const rt::Tensor got = rt::to_device(ctx, o8, rt::Device::cpu(), rt::DType::F8E4M3).to(rt::DType::F32);
  const std::vector<float> x = got.to_vector(), y = ref.to_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = double(x[i]) / scales.scale_o - y[i];
    num += d * d, den += double(y[i]) * y[i];
  }
  const double distance = den > 0 ? std::sqrt(num / den) : 0.0;
  std::printf("cuDNN FP8 (e4m3) dense: %.3f ms, %.1f TFLOP/s; cuDNN %s / FP8 = %.3fx; relative L2 distance to "
              "cuDNN %s %.2e\n",
              ms, dense_flops / (ms * 1e-3) / 1e12, rt::dtype_name(ctx.dtype()), cudnn_ms / ms,
              rt::dtype_name(ctx.dtype()), distance);
  // e4m3 rounding of q, k, v, P and O puts a correct run near 4.6e-2 (head dim 128 on the H200); at head
  // dim 64 session 14 saw 3.75, a wrong result whose time means nothing.
  if (distance > 0.1)
    std::printf("  WARNING: cuDNN's FP8 output is far from its %s output (expected about 5e-2): not a valid yardstick "
                "for this shape\n",
                rt::dtype_name(ctx.dtype()));
  return true;
}

int run(const BenchAttentionOptions& o) {
  sattn::TokenLayout tokens;
  if (!parse_grid(o.grid, tokens.grid)) {
    std::fprintf(stderr, "ditrun bench-attention: --grid %s: expected TxHxW or HxW with positive sizes\n", o.grid.c_str());
    return kExitUsage;
  }
  tokens.text_len = o.text, tokens.text_valid = o.text_valid, tokens.text_before = !o.text_after;
  if (o.text < 0 || o.text_valid > o.text || o.heads < 1 || o.repeat < 1 || o.warmup < 0 || o.steady_seconds < 0 ||
      !sattn::kernels::block_sparse_head_dim_supported(o.dim)) {
    std::fprintf(stderr, "ditrun bench-attention: need --text >= 0, --text-valid <= --text, --heads >= 1, --repeat >= 1, "
                 "--warmup >= 0, --steady-seconds >= 0 and --dim 64 or 128\n");
    return kExitUsage;
  }
  sattn::AttnQuant quant = sattn::AttnQuant::None;
  if (!sattn::parse_attn_quant(o.quant, &quant)) {
    std::fprintf(stderr, "ditrun bench-attention: --quant %s: expected %s\n", o.quant.c_str(),
                 sattn::attn_quant_choices().c_str());
    return kExitUsage;
  }
  // The block-sparse kernels to time on every layout, in row order.
  std::vector<sattn::SparseKernel> kernels;
  if (o.kernel == "both") {
    kernels = {sattn::SparseKernel::Sm80, sattn::SparseKernel::Sm90, sattn::SparseKernel::Sm90Ws};
  } else {
    sattn::SparseKernel k = sattn::SparseKernel::Auto;
    if (!sattn::parse_sparse_kernel(o.kernel, &k)) {
      std::fprintf(stderr, "ditrun bench-attention: --kernel %s: expected auto, sm80, sm90, sm90ws or both\n",
                   o.kernel.c_str());
      return kExitUsage;
    }
    kernels = {k};
  }
  std::vector<sattn::MethodSpec> specs;
  for (const std::string& m : o.methods) {
    auto spec = sattn::parse_method(m);
    if (!spec) {
      std::fprintf(stderr, "ditrun bench-attention: %s\n", spec.status().message().c_str());
      return kExitUsage;
    }
    if (const std::string bad = sattn::rule_error(spec->for_tokens(tokens)); !bad.empty()) {
      std::fprintf(stderr, "ditrun bench-attention: %s on this grid: %s\n", m.c_str(), bad.c_str());
      return kExitUsage;
    }
    specs.push_back(*spec);
  }
  auto ctx = make_context(o.device, rt::LogLevel::Info);
  if (!ctx) {
    std::fprintf(stderr, "ditrun bench-attention: %s\n", ctx.status().message().c_str());
    return kExitUsage;
  }
  if (!ctx->is_cuda() || (ctx->dtype() != rt::DType::BF16 && ctx->dtype() != rt::DType::F16)) {
    std::fprintf(stderr, "ditrun bench-attention: the block-sparse kernel needs --device cuda and --dtype bf16 or f16\n");
    return kExitUsage;
  }
  const int64_t len = tokens.seq_len();
  const double dense_flops = 4.0 * double(len) * double(len) * double(o.dim) * double(o.heads);
  try {
    sattn::AttentionParams p;
    uint64_t seed = 1;
    for (rt::Tensor* t : {&p.q, &p.k, &p.v}) {
      *t = rt::empty(*ctx, {1, len, o.heads, o.dim}, ctx->dtype());
      rt::fill_uniform(*ctx, *t, seed++, -1.f, 1.f);
    }
    sattn::AttentionParams dense = p;
    dense.kernel = sattn::DenseKernel::Cudnn;
    rt::Tensor cudnn_out;
    const double cudnn_ms = sustained_ms(*ctx, o.steady_seconds, o.warmup, o.repeat,
                                         [&] { cudnn_out = sattn::attention(*ctx, dense); });
    std::printf("ditrun bench-attention: grid %lldx%lldx%lld + text %lld (valid %lld, %s) = %lld tokens, %lld heads x %lld, "
                "%s, %s, mean of %d calls after %d\n",
                (long long)tokens.grid[0], (long long)tokens.grid[1], (long long)tokens.grid[2], (long long)o.text,
                (long long)tokens.valid_text(), o.text_after ? "after" : "before", (long long)len, (long long)o.heads,
                (long long)o.dim, rt::dtype_name(ctx->dtype()), ctx->cuda().name.c_str(), o.repeat, o.warmup);
    std::printf("cuDNN dense: %.3f ms, %.1f TFLOP/s\n", cudnn_ms, dense_flops / (cudnn_ms * 1e-3) / 1e12);
    if (o.cudnn_fp8 && !cudnn_fp8_row(*ctx, o, p, cudnn_out, cudnn_ms, dense_flops)) return kExitFailure;
    // A kernel that cannot run here (sm90 and sm90ws off Hopper) is reported once and left out of the rows.
    for (auto it = kernels.begin(); it != kernels.end();) {
      if (*it != sattn::SparseKernel::Sm90 && *it != sattn::SparseKernel::Sm90Ws) {
        ++it;
        continue;
      }
      const std::string why = sattn::kernels::cuda::block_sparse_sm90_device_refusal(*ctx);
      if (why.empty()) {
        ++it;
        continue;
      }
      std::printf("kernel %s: cannot run: %s\n", sattn::sparse_kernel_name(*it), why.c_str());
      it = kernels.erase(it);
    }
    if (kernels.empty()) return kExitUsage;
    std::printf("%-52s %6s %8s %9s %9s %9s %10s %8s %8s %8s\n", "method", "kernel", "plan ms", "upload ms", "tile dens",
                "flop dens", "sparse ms", "TFLOP/s", "/cudnn", "/(d·cud)");
    for (const sattn::MethodSpec& spec : specs) {
      const auto t0 = std::chrono::steady_clock::now();
      const sattn::BlockLayout layout = sattn::plan(spec.for_tokens(tokens), sattn::kernels::kBlockSparseQTile,
                                                    sattn::kernels::kBlockSparseKvTile);
      const double plan_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      const double tile_density = layout.tile_density(), flop_density = layout.flop_density();
      // Uploaded once, as a plan cache would keep it: the time is the kernel's. The upload (lists and the
      // partial tiles' masks) is what a call without a kept upload adds.
      rt::synchronize(*ctx);
      const auto u0 = std::chrono::steady_clock::now();
      const sattn::kernels::cuda::UploadedLayout uploaded = sattn::kernels::cuda::upload_layout(*ctx, layout);
      rt::synchronize(*ctx);
      const double upload_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - u0).count();
      // `out` and `ms` end as the first kernel's (the reference of the quantized rows below).
      rt::Tensor out, first_out;
      double ms = 0;
      for (size_t ki = 0; ki < kernels.size(); ++ki) {
        sattn::AttentionParams pk = p;
        pk.sparse_kernel = kernels[ki];
        rt::Tensor kernel_out;
        const double kernel_ms = sustained_ms(*ctx, o.steady_seconds, o.warmup, o.repeat, [&] {
          kernel_out = sattn::kernels::cuda::block_sparse_attention(*ctx, pk, layout, &uploaded);
        });
        std::printf("%-52s %6s %8.1f %9.3f %9.4f %9.4f %10.3f %8.1f %8.3f %8.3f\n", sattn::method_str(spec).c_str(),
                    sattn::sparse_kernel_name(kernels[ki]), plan_ms, upload_ms, tile_density, flop_density, kernel_ms,
                    tile_density * dense_flops / (kernel_ms * 1e-3) / 1e12, kernel_ms / cudnn_ms,
                    kernel_ms / (tile_density * cudnn_ms));
        // Same softmax over the same keys as cuDNN (a dense method without padded text): a correctness check.
        if (spec.is_dense() && tokens.valid_text() == tokens.text_len)
          std::printf("  dense check (%s): relative L2 distance to cuDNN %.2e\n", sattn::sparse_kernel_name(kernels[ki]),
                      rel_l2(*ctx, kernel_out, cudnn_out));
        if (ki == 0) {
          first_out = kernel_out, ms = kernel_ms;
        } else {
          std::printf("  %s vs %s: relative L2 distance %.2e, time ratio %.3fx\n", sattn::sparse_kernel_name(kernels[ki]),
                      sattn::sparse_kernel_name(kernels[0]), rel_l2(*ctx, kernel_out, first_out), kernel_ms / ms);
        }
      }
      out = first_out;
      if (quant == sattn::AttnQuant::None) continue;
      if (const std::string why = sattn::kernels::block_sparse_quant_refusal(p, layout, quant); !why.empty()) {
        std::printf("  %s: cannot run: %s\n", sattn::attn_quant_name(quant), why.c_str());
        continue;
      }
      namespace kc = sattn::kernels::cuda;
      // The quantized kernel for the first row's --kernel (select_block_sparse_quant_kernel: sm80 stays
      // mma.sync, sm90 the wgmma kernel, auto and sm90ws the warp-specialized one for int8-fp8pv), so that
      // the ratios compare like with like.
      sattn::AttentionParams pq = p;
      pq.sparse_kernel = kernels[0];
      rt::Tensor quant_out;
      const double quant_ms = sustained_ms(*ctx, o.steady_seconds, o.warmup, o.repeat, [&] {
        quant_out = kc::block_sparse_attention_quant(*ctx, pq, layout, quant, &uploaded);
      });
      kc::QuantizedOperands operands;
      const double prepass_ms = sustained_ms(*ctx, o.steady_seconds, o.warmup, o.repeat,
                                       [&] { operands = kc::quantize_operands(*ctx, pq, layout, quant, uploaded); });
      const double kernel_ms = sustained_ms(*ctx, o.steady_seconds, o.warmup, o.repeat, [&] {
        quant_out = kc::block_sparse_attention_quantized(*ctx, operands, layout, uploaded);
      });
      const char* name = sattn::attn_quant_name(quant);
      const std::optional<sattn::SparseKernel> quant_kernel =
          kc::select_block_sparse_quant_kernel(*ctx, pq.sparse_kernel, quant, nullptr);  // it ran: it has a value
      std::printf("  %s (%s kernel): %.3f ms = pre-pass %.3f + kernel %.3f (%.1f TFLOP/s-equivalent); %s sparse / %s "
                  "kernel = %.3fx, / (pre-pass + kernel) = %.3fx; relative L2 distance to the %s kernel %.2e\n",
                  name, sattn::sparse_kernel_name(quant_kernel.value_or(sattn::SparseKernel::Auto)), quant_ms,
                  prepass_ms, kernel_ms, tile_density * dense_flops / (kernel_ms * 1e-3) / 1e12,
                  rt::dtype_name(ctx->dtype()), name, ms / kernel_ms, ms / quant_ms, rt::dtype_name(ctx->dtype()),
                  rel_l2(*ctx, quant_out, out));
    }
  } catch (const rt::OutOfMemory& e) {
    std::fprintf(stderr, "ditrun bench-attention: %s\n", e.what());
    return kExitFailure;
  }
  return kExitOk;
}
#else
int run(const BenchAttentionOptions&) {
  std::fprintf(stderr, "ditrun bench-attention: this build has no CUDA backend (the block-sparse kernel is GPU-only)\n");
  return kExitUsage;
}
#endif

}  // namespace

Command add_bench_attention_command(CLI::App& root) {
  auto o = std::make_shared<BenchAttentionOptions>();
  CLI::App* c = root.add_subcommand("bench-attention",
                                    "Time the block-sparse attention kernel per method against cuDNN dense (GPU)");
  c->add_option("--grid", o->grid, "token grid TxHxW (or HxW): Flux 2048x2048 is 128x128")->capture_default_str();
  c->add_option("--text", o->text, "text tokens in the sequence")->capture_default_str();
  c->add_option("--text-valid", o->text_valid, "real text tokens (the rest is padding; -1: all)")->capture_default_str();
  c->add_flag("--text-after", o->text_after, "text after the grid (HunyuanVideo) instead of before (Flux)");
  c->add_option("--heads", o->heads, "attention heads")->capture_default_str();
  c->add_option("--dim", o->dim, "head dim: 64 or 128")->capture_default_str();
  c->add_option("--method", o->methods,
                "attention method, repeatable: dense | gna:window=...,stride=...,dilation=... | grat:variant=B|X,group=...")
      ->capture_default_str();
  c->add_option("--quant", o->quant,
                "also run the quantized kernel on each layout: none | int8 (INT8 Q/K and P·V) | int8-fp8pv (INT8 Q/K, "
                "FP8 P·V) | int4 (INT4 Q/K held in s8, INT8 P·V)")
      ->capture_default_str();
  c->add_option("--kernel", o->kernel,
                "bf16/f16 block-sparse kernel: auto | sm80 (mma.sync) | sm90 (wgmma, Hopper) | "
                "sm90ws (warp-specialized wgmma, Hopper) | both (sm80, sm90 and sm90ws, with the distance of each "
                "to sm80)")
      ->capture_default_str();
  c->add_option("--warmup", o->warmup, "untimed calls first")->capture_default_str();
  c->add_option("--repeat", o->repeat, "timed calls (the mean is reported)")->capture_default_str();
  c->add_option("--steady-seconds", o->steady_seconds,
                "seconds each timed function runs before its timing, so that it is timed in the GPU's sustained "
                "power state for it (0: time from a cold start, as before session 12)")
      ->capture_default_str();
  c->add_flag("--cudnn-fp8", o->cudnn_fp8,
              "also time cuDNN's FP8 (e4m3) dense attention on the same q, k, v (rounded to e4m3): the yardstick for "
              "8-bit attention on this GPU");
  o->device.device = "cuda";
  add_device_options(*c, o->device);
  return {c, [o] { return run(*o); }};
}

}  // namespace app
