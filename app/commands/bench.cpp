// `ditrun bench`: where the time goes for a full-size model, without a download. Builds the model from
// its known config with seeded random weights on the device (--random-weights), then times, each as
// the median of --runs after --warmup: one DiT step (on a GPU also replayed as a CUDA graph, unless
// --no-cuda-graph), the attention of one step alone, the VAE decode and the text encoders; with the peak
// device memory of each part. Prints a table; --json writes it too.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iomanip>
#include <memory>
#include <sstream>
#include <tuple>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "app/commands/commands.h"
#include "app/commands/device_options.h"
#include "app/commands/exit_codes.h"
#include "app/pipeline/denoise.h"
#include "base/out_of_memory.h"
#include "dit/flux/attention_policy.h"
#include "dit/flux/captured_forward.h"
#include "dit/flux/model.h"
#include "ops.h"
#include "sparse_attention/attention.h"
#include "text_encoder/clip/model.h"
#include "text_encoder/t5/model.h"
#include "vae/flux/decoder.h"

namespace app {

namespace {

struct BenchOptions {
  DeviceOptions device;
  std::string model = "flux-dev";
  bool random_weights = false;
  int width = 1024, height = 1024;
  int text_len = 512;
  int warmup = 2, runs = 5;
  std::string parts = "dit,attention,gemm,vae,text";
  uint64_t seed = 0;
  std::string json;
  int depth = -1, depth_single = -1;  // override the block counts (per-block costs, small smoke runs)
  std::vector<std::string> methods;    // --method: sparse attention methods timed besides dense
  std::vector<sattn::MethodSpec> specs;
};

struct Timing {
  std::string part, detail;
  double ms = 0;  // median
  double min_ms = 0;
  size_t peak = 0;
  double load_s = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Median and minimum wall time of f, each run synchronized with the device.
std::pair<double, double> time_ms(const rt::Context& ctx, int warmup, int runs, const std::function<void()>& f) {
  for (int i = 0; i < warmup; ++i) f();
  rt::synchronize(ctx);
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    rt::synchronize(ctx);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return {median(ms), *std::min_element(ms.begin(), ms.end())};
}

rt::Tensor random_input(const rt::Context& ctx, const rt::Shape& shape, rt::DType dtype, uint64_t seed) {
  rt::Tensor t = rt::empty(ctx, shape, dtype);
  rt::fill_uniform(ctx, t, seed, -1.f, 1.f);
  return t;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

size_t peak_since_reset(const rt::Context& ctx) {
  const rt::MemoryStats m = rt::memory_stats(ctx);
  return std::max(m.peak, m.in_use);
}

// One DiT step (conditioning + blocks) issued op by op, and, on a GPU unless --no-cuda-graph, the same step
// as the denoising loop runs it from its second step on: replayed as a CUDA graph (CapturedForward).
void bench_dit(const rt::Context& ctx, const BenchOptions& o, const dit::flux::Config& cfg, std::vector<Timing>& rows) {
  Timing t{"dit step", ""};
  rt::reset_peak_memory(ctx);
  const auto t0 = std::chrono::steady_clock::now();
  auto model = dit::flux::FluxTransformer::load(weights::WeightLoader::random(ctx, o.seed, "transformer"), cfg);
  DITRUN_CHECK(model.is_ok(), model.status().message());
  rt::synchronize(ctx);
  t.load_s = seconds_since(t0);
  const int64_t h2 = o.height / 16, w2 = o.width / 16, n = h2 * w2;
  const rt::Tensor latents = random_input(ctx, {1, n, cfg.in_channels}, rt::DType::F32, 1);
  const rt::Tensor txt = random_input(ctx, {1, o.text_len, cfg.context_dim}, ctx.dtype(), 2);
  const rt::Tensor y = random_input(ctx, {1, cfg.pooled_dim}, ctx.dtype(), 3);
  const rt::Tensor timestep = rt::Tensor::full({1}, 0.5f);
  const rt::Tensor guidance = cfg.guidance_embed ? rt::Tensor::full({1}, 3.5f) : rt::Tensor();
  const dit::flux::RopeTables pe = model->rope(ctx, latent_image_ids(h2, w2), text_ids(o.text_len));
  double enqueue_ms = 0;  // host time to issue the step: when it nears the step time, the host is the bound
  auto timed = [&](const std::function<void()>& step) {
    return time_ms(ctx, o.warmup, o.runs, [&] {
      const auto s0 = std::chrono::steady_clock::now();
      step();
      enqueue_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s0).count();
    });
  };
  std::tie(t.ms, t.min_ms) = timed([&] { model->forward(ctx, latents, pe, txt, timestep, y, guidance, 0); });
  t.peak = peak_since_reset(ctx);
  std::ostringstream d;
  d << n << " image + " << o.text_len << " text tokens, " << cfg.depth << "+" << cfg.depth_single << " blocks, host issues it in "
    << int(enqueue_ms) << " ms";
  t.detail = d.str();
  rows.push_back(t);
  if (!ctx.is_cuda() || ctx.debug_sync() || !o.device.cuda_graph) return;

  Timing g{"dit step graph", ""};
  rt::reset_peak_memory(ctx);
  dit::flux::CapturedForward captured(ctx, *model, pe, true);
  auto step = [&] {
    const std::vector<dit::flux::ForwardBranch> branches{{txt, model->conditioning(ctx, timestep, y, guidance)}};
    captured.run(ctx, latents, branches, 0);
  };
  step();  // eager through the graph's buffers
  step();  // captured and launched
  std::tie(g.ms, g.min_ms) = timed(step);
  g.peak = peak_since_reset(ctx);
  std::ostringstream dg;
  if (captured.failure().empty())
    dg << "replayed as one CUDA graph (conditioning outside it), host issues it in " << std::fixed << std::setprecision(2)
       << enqueue_ms << " ms";
  else
    dg << "no CUDA graph, ran eagerly: " << captured.failure();
  g.detail = dg.str();
  rows.push_back(g);
  const double dense_ms = g.ms;
  // Each sparse method's step, as the denoising loop runs its sparse steps (a graph keyed by the method).
  for (size_t i = 0; i < o.specs.size(); ++i) {
    dit::flux::AttentionPolicy policy;
    policy.method = o.specs[i];
    Timing m{"dit step graph " + o.methods[i], ""};
    rt::reset_peak_memory(ctx);
    dit::flux::CapturedForward sparse(ctx, *model, pe, true, policy);
    auto sparse_step = [&] {
      const std::vector<dit::flux::ForwardBranch> branches{{txt, model->conditioning(ctx, timestep, y, guidance)}};
      sparse.run(ctx, latents, branches, 0);
    };
    sparse_step();
    sparse_step();
    std::tie(m.ms, m.min_ms) = timed(sparse_step);
    m.peak = peak_since_reset(ctx);
    std::ostringstream dm;
    dm << std::fixed << std::setprecision(3) << m.ms / dense_ms << "x the dense graph step"
       << (sparse.failure().empty() ? "" : "; no CUDA graph: " + sparse.failure());
    m.detail = dm.str();
    rows.push_back(m);
  }
}

Timing bench_attention(const rt::Context& ctx, const BenchOptions& o, const dit::flux::Config& cfg,
                       const sattn::MethodSpec& method = {}, const std::string& name = "") {
  const int64_t len = int64_t(o.height / 16) * (o.width / 16) + o.text_len;
  sattn::AttentionParams p;
  p.tokens = dit::flux::joint_tokens(o.text_len, o.height / 16, o.width / 16);
  p.method = method;
  p.q = random_input(ctx, {1, len, cfg.num_heads, cfg.head_dim}, ctx.dtype(), 4);
  p.k = random_input(ctx, {1, len, cfg.num_heads, cfg.head_dim}, ctx.dtype(), 5);
  p.v = random_input(ctx, {1, len, cfg.num_heads, cfg.head_dim}, ctx.dtype(), 6);
  // Ten calls per sample, so the host's per-call work overlaps the GPU as it does inside a step.
  constexpr int kBurst = 10;
  auto [burst_ms, burst_min_ms] = time_ms(ctx, o.warmup, o.runs, [&] {
    for (int i = 0; i < kBurst; ++i) sattn::attention(ctx, p);
  });
  const double ms = burst_ms / kBurst, min_ms = burst_min_ms / kBurst;
  const int64_t calls = cfg.depth + cfg.depth_single;
  const double flops = 4.0 * double(len) * double(len) * double(cfg.head_dim) * double(cfg.num_heads);
  std::ostringstream d;
  d << calls << " calls x " << ms << " ms, S=" << len << ", " << flops / (ms * 1e-3) / 1e12 << " TFLOP/s";
  if (!method.is_dense()) d << " (on the visited tiles' share: " << sattn::describe_attention(ctx, p) << ")";
  Timing t{name.empty() ? "attention/step" : "attention/step " + name, d.str(), ms * double(calls), min_ms * double(calls)};
  return t;
}

// The step's linear layers alone, each shape timed with random operands and weighted by its count per step.
Timing bench_gemm(const rt::Context& ctx, const BenchOptions& o, const dit::flux::Config& cfg) {
  const int64_t n = int64_t(o.height / 16) * (o.width / 16), t = o.text_len, c = cfg.hidden_size, m = cfg.mlp_hidden();
  struct Shape {
    int64_t rows, in, out;
    bool gelu;
    int64_t count;
  };
  const int64_t d = cfg.depth, s = cfg.depth_single;
  const std::vector<Shape> shapes = {
      {n, c, 3 * c, false, d}, {n, c, c, false, d}, {n, c, m, true, d}, {n, m, c, false, d},
      {t, c, 3 * c, false, d}, {t, c, c, false, d}, {t, c, m, true, d}, {t, m, c, false, d},
      {n + t, c, 3 * c, false, s}, {n + t, c, m, true, s}, {n + t, c + m, c, false, s}};
  double total_ms = 0, flops = 0;
  uint64_t seed = 100;
  for (const Shape& sh : shapes) {
    const rt::Tensor x = random_input(ctx, {1, sh.rows, sh.in}, ctx.dtype(), seed++);
    const rt::Tensor w = random_input(ctx, {sh.out, sh.in}, ctx.dtype(), seed++);
    const rt::Tensor b = random_input(ctx, {sh.out}, ctx.dtype(), seed++);
    constexpr int kBurst = 5;
    auto [ms, unused] = time_ms(ctx, 1, o.runs, [&] {
      for (int i = 0; i < kBurst; ++i) sh.gelu ? rt::linear_gelu_tanh(ctx, x, w, b) : rt::linear(ctx, x, w, b);
    });
    total_ms += ms / kBurst * double(sh.count);
    flops += 2.0 * double(sh.rows) * double(sh.in) * double(sh.out) * double(sh.count);
  }
  std::ostringstream det;
  det << shapes.size() << " shapes, " << flops / 1e12 << " TFLOP per step, " << flops / (total_ms * 1e-3) / 1e12 << " TFLOP/s";
  return Timing{"linear/step", det.str(), total_ms, total_ms};
}

Timing bench_vae(const rt::Context& ctx, const BenchOptions& o) {
  Timing t{"vae decode", ""};
  rt::reset_peak_memory(ctx);
  const vae::flux::Config cfg = vae::flux::Config::flux1();
  auto dec = vae::flux::Decoder::load(weights::WeightLoader::random(ctx, o.seed + 1, "vae"), cfg);
  DITRUN_CHECK(dec.is_ok(), dec.status().message());
  const rt::Tensor z = random_input(ctx, {1, cfg.latent_channels, o.height / 8, o.width / 8}, rt::DType::F32, 7);
  auto [ms, min_ms] = time_ms(ctx, 1, std::max(1, o.runs / 2), [&] { dec->forward(ctx, z); });
  t.ms = ms;
  t.min_ms = min_ms;
  t.peak = peak_since_reset(ctx);
  t.detail = std::to_string(o.width) + "x" + std::to_string(o.height);
  return t;
}

Timing bench_text(const rt::Context& ctx, const BenchOptions& o) {
  Timing t{"text encode", ""};
  rt::reset_peak_memory(ctx);
  const te::t5::Config t5c = te::t5::Config::t5_v1_1_xxl();
  const te::clip::Config clc = te::clip::Config::clip_vit_large_patch14();
  auto t5 = te::t5::T5Encoder::load(weights::WeightLoader::random(ctx, o.seed + 2, "t5"), t5c);
  auto clip = te::clip::ClipTextEncoder::load(weights::WeightLoader::random(ctx, o.seed + 3, "clip"), clc);
  DITRUN_CHECK(t5.is_ok() && clip.is_ok(), "random text encoders failed to build");
  std::vector<int64_t> t5_ids(size_t(o.text_len)), clip_ids(size_t(clc.max_position_embeddings));
  for (size_t i = 0; i < t5_ids.size(); ++i) t5_ids[i] = int64_t((i * 7919) % size_t(t5c.vocab_size));
  for (size_t i = 0; i < clip_ids.size(); ++i) clip_ids[i] = int64_t((i * 104729) % size_t(clc.vocab_size));
  const rt::Tensor t5_in = rt::Tensor::from_vector_i64(t5_ids, {1, o.text_len});
  const rt::Tensor clip_in = rt::Tensor::from_vector_i64(clip_ids, {1, int64_t(clip_ids.size())});
  auto [ms, min_ms] = time_ms(ctx, 1, o.runs, [&] {
    t5->forward(ctx, t5_in);
    clip->forward(ctx, clip_in);
  });
  t.ms = ms;
  t.min_ms = min_ms;
  t.peak = peak_since_reset(ctx);
  t.detail = "T5-XXL " + std::to_string(o.text_len) + " tokens + CLIP-L 77";
  return t;
}

int run_bench(BenchOptions o) {
  for (const std::string& m : o.methods) {
    auto spec = sattn::parse_method(m);
    if (!spec) {
      std::fprintf(stderr, "ditrun bench: --method %s: %s\n", m.c_str(), spec.status().message().c_str());
      return kExitUsage;
    }
    if (const std::string why = dit::flux::attention_fit_error(*spec, o.width, o.height, o.text_len); !why.empty()) {
      std::fprintf(stderr, "ditrun bench: --method %s %s\n", m.c_str(), why.c_str());
      return kExitUsage;
    }
    o.specs.push_back(*spec);
  }
  if (!o.random_weights) {
    std::fprintf(stderr, "ditrun bench: only --random-weights is supported so far: it builds %s from its config with "
                 "seeded random weights (no download); add --random-weights\n", o.model.c_str());
    return kExitUsage;
  }
  auto cfg = dit::flux::Config::preset(o.model);
  if (!cfg) {
    std::fprintf(stderr, "ditrun bench: %s\n", cfg.status().message().c_str());
    return kExitUsage;
  }
  if (o.depth >= 0) cfg->depth = o.depth;
  if (o.depth_single >= 0) cfg->depth_single = o.depth_single;
  if (o.width % 16 || o.height % 16 || o.width < 16 || o.height < 16) {
    std::fprintf(stderr, "ditrun bench: --width/--height must be positive multiples of 16, got %dx%d\n", o.width, o.height);
    return kExitUsage;
  }
  if (o.runs < 1 || o.warmup < 0 || o.text_len < 1 || o.text_len > 512) {
    std::fprintf(stderr, "ditrun bench: need --runs >= 1, --warmup >= 0, 1 <= --text-len <= 512\n");
    return kExitUsage;
  }
  auto ctx = make_context(o.device, rt::LogLevel::Info);
  if (!ctx) {
    std::fprintf(stderr, "ditrun bench: %s\n", ctx.status().message().c_str());
    return kExitUsage;
  }
  // A full-size model on the CPU is f32 (48 GB for Flux.1): refuse what cannot fit instead of being killed.
  // Per block, from the layer shapes: double ~36·C², single ~15·C² parameters.
  const double c2 = double(cfg->hidden_size) * double(cfg->hidden_size);
  auto want = [&](const char* part) { return ("," + o.parts + ",").find(std::string(",") + part + ",") != std::string::npos; };
  const double dit_bytes = want("dit") ? (36.0 * double(cfg->depth) + 15.0 * double(cfg->depth_single)) * c2 * 4.0 : 0.0;
  const double t5_bytes = want("text") ? 4.8e9 * 4.0 : 0.0;  // T5-XXL's encoder, f32
  const double ram = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGE_SIZE));
  if (ctx->device().is_cpu() && t5_bytes > 0.7 * ram) {
    std::fprintf(stderr, "ditrun bench: the text part runs T5-XXL, about %.0f GB of f32 weights on the CPU; this machine "
                 "has %.0f GB. Use --device cuda, or leave it out (--parts dit,attention,gemm,vae)\n", t5_bytes / 1e9, ram / 1e9);
    return kExitUsage;
  }
  if (ctx->device().is_cpu() && dit_bytes > 0.7 * ram) {
    std::fprintf(stderr, "ditrun bench: %s with %lld+%lld blocks needs about %.0f GB of f32 weights on the CPU; this "
                 "machine has %.0f GB. Use --device cuda, or fewer blocks (--depth 1 --depth-single 1)\n",
                 o.model.c_str(), (long long)cfg->depth, (long long)cfg->depth_single, dit_bytes / 1e9, ram / 1e9);
    return kExitUsage;
  }
  std::vector<Timing> rows;
  try {
    if (want("dit")) bench_dit(*ctx, o, *cfg, rows);
    if (want("attention")) {
      rows.push_back(bench_attention(*ctx, o, *cfg));
      for (size_t i = 0; i < o.specs.size(); ++i) rows.push_back(bench_attention(*ctx, o, *cfg, o.specs[i], o.methods[i]));
    }
    if (want("gemm")) rows.push_back(bench_gemm(*ctx, o, *cfg));
    if (want("vae")) rows.push_back(bench_vae(*ctx, o));
    if (want("text")) rows.push_back(bench_text(*ctx, o));
  } catch (const rt::OutOfMemory& e) {
    std::fprintf(stderr, "ditrun bench: %s\n", e.what());
    return kExitFailure;
  }
  std::printf("ditrun bench: %s, random weights, %dx%d, %s %s, median of %d runs\n", o.model.c_str(), o.width, o.height,
              o.device.device.c_str(), rt::dtype_name(ctx->dtype()), o.runs);
  std::printf("%-16s %10s %10s %10s  %s\n", "part", "ms", "min ms", "peak GiB", "detail");
  nlohmann::json j;
  j["model"] = o.model;
  j["width"] = o.width;
  j["height"] = o.height;
  j["device"] = o.device.device;
  j["dtype"] = rt::dtype_name(ctx->dtype());
  for (const Timing& t : rows) {
    std::printf("%-16s %10.2f %10.2f %10.2f  %s\n", t.part.c_str(), t.ms, t.min_ms, double(t.peak) / double(1ull << 30),
                t.detail.c_str());
    j["parts"][t.part] = {{"ms", t.ms}, {"min_ms", t.min_ms}, {"peak_bytes", t.peak}, {"detail", t.detail}, {"load_s", t.load_s}};
  }
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << j.dump(2) << "\n";
    if (!f) {
      std::fprintf(stderr, "ditrun bench: could not write %s\n", o.json.c_str());
      return kExitOutput;
    }
  }
  return kExitOk;
}

}  // namespace

Command add_bench_command(CLI::App& root) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* c = root.add_subcommand("bench", "Time a full-size model's parts (DiT step, attention, VAE, text encoders)");
  c->add_option("--model", o->model, "model config: flux-dev or flux-schnell")->capture_default_str();
  c->add_flag("--random-weights", o->random_weights, "build the model with seeded random weights on the device (no download)");
  c->add_option("-W,--width", o->width, "image width")->capture_default_str();
  c->add_option("-H,--height", o->height, "image height")->capture_default_str();
  c->add_option("--text-len", o->text_len, "T5 tokens")->capture_default_str();
  c->add_option("--warmup", o->warmup, "untimed runs first")->capture_default_str();
  c->add_option("--runs", o->runs, "timed runs (the median is reported)")->capture_default_str();
  c->add_option("--parts", o->parts, "comma-separated: dit, attention, gemm, vae, text")->capture_default_str();
  c->add_option("--seed", o->seed, "seed of the random weights")->capture_default_str();
  c->add_option("--depth", o->depth, "override the number of double-stream blocks (e.g. 1 for a quick run)");
  c->add_option("--depth-single", o->depth_single, "override the number of single-stream blocks");
  c->add_option("--method", o->methods,
                "also time the DiT step (GPU, as a CUDA graph) and the attention with this sparse method, e.g. "
                "gna:window=1x80x80,stride=1x16x16 (repeatable; dense is always timed)");
  c->add_option("--json", o->json, "also write the results to this JSON file");
  add_device_options(*c, o->device);
  return {c, [o] { return run_bench(*o); }};
}

}  // namespace app
