// `ditrun calibrate`: PARO's offline step (sparse-attention.md §3). Runs the pipeline with full attention
// on a few prompts; an observer in the attention entry point gathers per (timestep bucket, layer, head)
// the softmax block sums in each candidate axis order; the plan (per head the order whose kept blocks
// capture the most attention mass at the target density, and the kept key tiles per query tile) is
// written to a file that `generate --attention paro:plan=FILE` loads.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "app/commands/commands.h"
#include "app/commands/device_options.h"
#include "app/commands/exit_codes.h"
#include "app/commands/model_options.h"
#include "app/pipeline/flux_pipeline.h"
#include "sparse_attention/kernels/sparse/block_sparse.h"
#include "sparse_attention/methods/paro_calibrate.h"

namespace app {

namespace {

struct CalibrateOptions {
  ModelPathArgs paths;
  GenerateParams params;
  std::vector<std::string> prompts;
  std::string prompts_file;
  double density = 0.3;
  int buckets = sattn::kParoDefaultBuckets;
  std::string out = "plan.paro";
  bool overwrite = false;
  bool quiet = false;
  DeviceOptions device;
};

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "ditrun calibrate: %s\n", msg.c_str());
  return kExitUsage;
}

int run_calibrate(CalibrateOptions o) {
  if (!o.prompts_file.empty()) {
    std::ifstream in(o.prompts_file);
    if (!in) return usage_error("--prompts " + o.prompts_file + ": cannot read the file");
    for (std::string line; std::getline(in, line);)
      if (line.find_first_not_of(" \t\r") != std::string::npos) o.prompts.push_back(line);
  }
  if (o.prompts.empty()) return usage_error("no prompts: give --prompt P (repeatable) or --prompts FILE (one per line)");
  if (!(o.density > 0.0 && o.density <= 1.0)) return usage_error("--density must be in (0, 1]");
  if (o.buckets < 1 || o.buckets > 1000) return usage_error("--buckets must be in [1, 1000]");
  if (o.params.steps < 0 || o.params.steps > 1000) return usage_error("--steps must be in 1..1000");
  for (auto [name, v] : {std::pair{"width", o.params.width}, std::pair{"height", o.params.height}})
    if (v != 0 && (v < 16 || v > 8192 || v % 16 != 0))
      return usage_error(std::string("--") + name + " " + std::to_string(v) + " must be a multiple of 16 in 16..8192");
  if (!o.overwrite && std::filesystem::exists(o.out)) {
    std::fprintf(stderr, "ditrun calibrate: %s exists; pass --overwrite to replace it\n", o.out.c_str());
    return kExitOutput;
  }
  auto paths = resolve_model_paths(o.paths);
  if (!paths) {
    std::fprintf(stderr, "ditrun calibrate: %s\n", paths.status().message().c_str());
    return kExitModel;
  }
  auto made = make_context(o.device, o.quiet ? rt::LogLevel::Quiet : rt::LogLevel::Info);
  if (!made) return usage_error(made.status().message());
  const rt::Context& ctx = made.value();
  auto pipe = FluxPipeline::load(ctx, *paths);
  if (!pipe) {
    std::fprintf(stderr, "ditrun calibrate: %s\n", pipe.status().message().c_str());
    return kExitModel;
  }
  GenerateParams p = (*pipe)->with_defaults(o.params);
  p.cuda_graph = false;  // the observer copies q and k on every call
  const dit::flux::Config& c = (*pipe)->transformer_config();
  const int64_t layers = int64_t(c.depth + c.depth_single);
  sattn::ParoCalibrator calibrator(layers, p.steps, o.buckets, sattn::kernels::kBlockSparseQTile,
                                   sattn::kernels::kBlockSparseKvTile);
  p.attention = dit::flux::AttentionPolicy{};
  p.attention.observer = &calibrator;
  for (size_t i = 0; i < o.prompts.size(); ++i) {
    p.prompt = o.prompts[i];
    if (!o.quiet)
      std::fprintf(stderr, "ditrun calibrate: prompt %zu/%zu, %lldx%lld, %d steps%s\n", i + 1, o.prompts.size(),
                   (long long)p.width, (long long)p.height, p.steps,
                   ctx.is_cuda() ? " (block sums on the CPU: slow)" : "");
    auto image = (*pipe)->generate(ctx, p, [](const char*, int, int) {});
    if (!image) {
      std::fprintf(stderr, "ditrun calibrate: %s\n", image.status().message().c_str());
      return kExitFailure;
    }
  }
  sattn::ParoPlan plan = calibrator.plan(o.density, int(o.prompts.size()));
  if (const std::string bad = sattn::paro_model_error(plan, layers, plan.heads, plan.head_dim); !bad.empty())
    return usage_error(bad);
  if (auto st = sattn::write_paro_plan(plan, o.out, o.overwrite); !st) {
    std::fprintf(stderr, "ditrun calibrate: %s\n", st.message().c_str());
    return kExitOutput;
  }
  if (!o.quiet)
    std::fprintf(stderr, "ditrun calibrate: %s (%s), image-tile density %.3f\n", o.out.c_str(), plan.describe().c_str(),
                 plan.image_density());
  std::printf("%s\n", o.out.c_str());
  return kExitOk;
}

}  // namespace

Command add_calibrate_command(CLI::App& root) {
  auto o = std::make_shared<CalibrateOptions>();
  CLI::App* c = root.add_subcommand(
      "calibrate",
      "PARO calibration: run full attention on a few prompts and write a plan (per timestep bucket, layer and head an "
      "axis order and static block masks) for generate --attention paro:plan=FILE. The block sums are computed where the model runs (on a GPU "
      "as device matrix products)");
  add_model_options(*c, o->paths);
  c->add_option("-p,--prompt", o->prompts, "A calibration prompt (repeatable)");
  c->add_option("--prompts", o->prompts_file, "A file of calibration prompts, one per line");
  c->add_option("-W,--width", o->params.width, "Image width the plan is for (default: the model's)");
  c->add_option("-H,--height", o->params.height, "Image height the plan is for (default: the model's)");
  c->add_option("--steps", o->params.steps, "Denoising steps per prompt (default: the model's)");
  c->add_option("-s,--seed", o->params.seed, "Seed of the initial noise")->capture_default_str();
  c->add_option("--max-sequence-length", o->params.max_sequence_length, "T5 tokens (the plan is for this text length)");
  c->add_option("--density", o->density, "Kept share of image key tiles per image query tile")->capture_default_str();
  c->add_option("--buckets", o->buckets, "Timestep buckets (bucket = int((step + 1) / steps * buckets))")->capture_default_str();
  c->add_option("-o,--out", o->out, "Plan file to write")->capture_default_str();
  c->add_flag("--overwrite", o->overwrite, "Replace --out if it exists");
  c->add_flag("-q,--quiet", o->quiet, "No progress on stderr");
  add_device_options(*c, o->device);
  return {c, [o] { return run_calibrate(*o); }};
}

}  // namespace app
