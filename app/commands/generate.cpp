// `ditrun generate`: prompt to PNG. Everything the user can get wrong is checked before the model
// loads, so a typo does not cost a minute of loading.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>
#include <unistd.h>
#include <vector>

#include "app/commands/commands.h"
#include "app/commands/device_options.h"
#include "app/commands/model_options.h"
#include "app/commands/exit_codes.h"
#if DITRUN_WITH_OPENCV
#include "app/evaluate/caption.h"
#include "app/evaluate/world_spec.h"
#endif
#include "app/io/png_writer.h"
#include "app/pipeline/attention_config.h"
#include "app/pipeline/flux_pipeline.h"
#include "base/out_of_memory.h"
#include "ops.h"
#include "sparse_attention/methods/method_spec.h"
#include "dit/flux/attention_policy.h"

namespace app {

namespace {

struct GenerateOptions {
  ModelPathArgs paths;
  GenerateParams params;
  LoadOptions load;
  std::string attention = "dense";  // --attention as typed; parsed into params.attention
  int dense_steps = 0;
  std::vector<int> dense_layers;
  std::string attention_config;  // --attention-config FILE
  bool no_fallback = false;      // --no-attention-fallback
  // Which attention flags the user gave: they replace the config file's keys of the same name.
  bool attention_given = false, dense_steps_given = false, dense_layers_given = false;
  std::vector<LabeledMethod> methods;  // every method of params.attention and where it was written
  std::string out = "ditrun.png";
  bool overwrite = false;
  bool quiet = false;
  DeviceOptions device;
};

std::string size_hint(const char* what, int64_t v) {
  const int64_t lo = std::max<int64_t>(16, (v / 16) * 16), hi = lo + 16;
  std::ostringstream os;
  os << "--" << what << " " << v << " is not a multiple of 16 (Flux packs 2x2 latent patches of an 8x downsampled image); "
     << "nearest valid " << what << "s: " << (lo == v ? hi : lo);
  if (lo != v && v > 16) os << " or " << hi;
  return os.str();
}

std::string fixed2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "ditrun generate: %s\n", msg.c_str());
  return kExitUsage;
}

// --attention-config, then --attention, --dense-steps and --dense-layers over its keys, into params.attention.
int parse_attention(GenerateOptions& o) {
  dit::flux::AttentionPolicy& policy = o.params.attention;
  bool config_method = false;
  if (!o.attention_config.empty()) {
    auto config = load_attention_config(o.attention_config);
    if (!config) return usage_error("--attention-config " + config.status().message());
    policy = config->policy;
    config_method = config->has_method && !o.attention_given;
    if (config->has_dense_steps && !o.dense_steps_given) o.dense_steps = policy.dense_steps;
    if (config->has_dense_layers && !o.dense_layers_given) o.dense_layers = policy.dense_layers;
  }
  if (!config_method) {
    auto method = sattn::parse_method(o.attention);
    if (!method) return usage_error("--attention " + o.attention + ": " + method.status().message());
    policy.method = *method;
  }
  if (o.dense_steps < 0) return usage_error("--dense-steps " + std::to_string(o.dense_steps) + " must be >= 0");
  for (int l : o.dense_layers)
    if (l < 0) return usage_error("--dense-layers " + std::to_string(l) + ": layer indices are >= 0");
  policy.dense_steps = o.dense_steps;
  policy.dense_layers = o.dense_layers;
  policy.fallback = !o.no_fallback;
  o.methods = {{config_method ? o.attention_config + ": \"method\"" : "--attention " + o.attention, policy.method}};
  for (const auto& [layer, m] : policy.layer_methods)
    o.methods.push_back({o.attention_config + ": \"layers\" \"" + std::to_string(layer) + "\"", m});
  return kExitOk;
}

// Every sparse method must fit the image's token grid.
int check_attention_fits(const GenerateOptions& o, const GenerateParams& p) {
  const std::string why = attention_fit_errors(o.methods, p.width, p.height, p.max_sequence_length);
  return why.empty() ? kExitOk : usage_error(why);
}

// Layer indices must exist in the loaded transformer.
int check_attention_layers(const GenerateOptions& o, const dit::flux::Config& c) {
  const int layers = int(c.depth + c.depth_single);
  dit::flux::AttentionPolicy flags, file = o.params.attention;
  flags.dense_layers = o.dense_layers;
  if (o.dense_layers_given) file.dense_layers.clear();
  if (std::string why = flags.layer_error(layers); !why.empty() && o.dense_layers_given)
    return usage_error("--dense-layers: " + why);
  if (std::string why = file.layer_error(layers); !why.empty()) return usage_error(o.attention_config + ": " + why);
  return kExitOk;
}

int validate(const GenerateOptions& o) {
  const auto& p = o.params;
  if (p.prompt.find_first_not_of(" \t\r\n") == std::string::npos)
    return usage_error("--prompt is empty; describe the image, e.g. --prompt \"a red fox in snow\"");
  for (auto [name, v] : {std::pair{"width", p.width}, std::pair{"height", p.height}}) {
    if (v == 0) continue;  // the model's default
    if (v < 16 || v > 8192) return usage_error(std::string("--") + name + " " + std::to_string(v) + " is out of range; use 16..8192 in steps of 16");
    if (v % 16 != 0) return usage_error(size_hint(name, v));
  }
  if (p.steps < 0 || p.steps > 1000) return usage_error("--steps " + std::to_string(p.steps) + " is out of range; use 1..1000");
  if (!(p.guidance >= 0.f || p.guidance == -1.f) || !std::isfinite(p.guidance))
    return usage_error("--guidance must be a finite number >= 0");
  if (p.true_cfg && !(*p.true_cfg >= 1.f && std::isfinite(*p.true_cfg)))
    return usage_error("--true-cfg must be >= 1 (1 disables true CFG)");
  if (p.vae_tile != 0 && (p.vae_tile < 128 || p.vae_tile % 64 != 0))
    return usage_error("--vae-tile " + std::to_string(p.vae_tile) + " must be 0 (off) or a multiple of 64 of at least 128 pixels, e.g. 512");
  if (p.max_sequence_length < 0 || p.max_sequence_length > 512)
    return usage_error("--max-sequence-length " + std::to_string(p.max_sequence_length) + " is out of range; use 1..512 (T5 in Flux)");
  return kExitOk;
}

// The embedded model knows only the shapes world; words outside its caption grammar have no learned
// meaning. Say so (it still runs) rather than let a user wonder why "a cat" gives a blob.
// The grammar lives with the evaluator (app/evaluate, OpenCV): builds without OpenCV give no note.
void note_if_outside_embedded_world(const GenerateOptions& o) {
#if DITRUN_WITH_OPENCV
  const ModelPathArgs& a = o.paths;
  if (!(a.model.empty() && a.transformer.empty() && a.vae.empty() && a.t5.empty() && a.clip.empty())) return;
  auto spec = eval::load_world_spec(DITRUN_WORLD_SPEC);
  if (!spec) return;
  auto scene = eval::parse_caption(o.params.prompt, *spec);
  if (scene && !scene->video) return;
  const std::string why = scene ? "it draws still images, not motion" : scene.status().message();
  std::fprintf(stderr,
               "ditrun generate: note: the embedded model only draws the shapes world (see README), e.g. \"a large "
               "red circle at the left on a blue background\"; %s. Generating anyway; use --model for a real "
               "Flux checkpoint.\n",
               why.substr(0, why.find('\n')).c_str());
#endif
}

int generate_with(const GenerateOptions& o, const rt::Context& ctx, const ComponentPaths& model_paths);

// Says when the effective true-CFG pair (the user's flags with the model's defaults) does nothing.
void note_inert_true_cfg(const GenerateOptions& o, const GenerateParams& p) {
  const float scale = p.true_cfg.value_or(1.f);
  if (scale > 1.f && !p.negative_prompt)
    std::fprintf(stderr, "ditrun generate: note: %s %.2f has no effect without --negative-prompt (\"\" is the empty prompt)\n",
                 o.params.true_cfg ? "--true-cfg" : "the model's true CFG scale", scale);
  if (scale <= 1.f && o.params.negative_prompt && !o.params.true_cfg)
    std::fprintf(stderr, "ditrun generate: note: --negative-prompt has no effect without --true-cfg > 1 (this model's default is %g)\n",
                 scale);
}

int run_generate(GenerateOptions o) {
  if (int rc = parse_attention(o); rc != kExitOk) return rc;
  if (int rc = validate(o); rc != kExitOk) return rc;
  if (auto st = check_output_path(o.out, o.overwrite); !st) {
    std::fprintf(stderr, "ditrun generate: %s\n", st.message().c_str());
    return kExitOutput;
  }
  auto paths = resolve_model_paths(o.paths);
  if (!paths) {
    std::fprintf(stderr, "ditrun generate: %s\n", paths.status().message().c_str());
    return kExitModel;
  }
  if (!o.quiet) note_if_outside_embedded_world(o);
  auto made = make_context(o.device, o.quiet ? rt::LogLevel::Quiet : rt::LogLevel::Info);
  if (!made) return usage_error(made.status().message());
  const rt::Context& ctx = made.value();
  try {
    return generate_with(o, ctx, *paths);
  } catch (const rt::OutOfMemory& e) {
    std::fprintf(stderr, "ditrun generate: %s\n", e.what());
    return kExitFailure;
  }
}

int generate_with(const GenerateOptions& o, const rt::Context& ctx, const ComponentPaths& model_paths) {
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  auto pipe = FluxPipeline::load(ctx, model_paths, o.load);
  if (!pipe) {
    std::fprintf(stderr, "ditrun generate: %s\n", pipe.status().message().c_str());
    return kExitModel;
  }
  GenerateParams p = (*pipe)->with_defaults(o.params);
  p.cuda_graph = o.device.cuda_graph;
  {
    GenerateOptions effective = o;
    effective.params = p;
    if (int rc = validate(effective); rc != kExitOk) return rc;  // a model's defaults file can be wrong too
  }
  if (int rc = check_attention_fits(o, p); rc != kExitOk) return rc;
  if (int rc = check_attention_layers(o, (*pipe)->transformer_config()); rc != kExitOk) return rc;
  note_inert_true_cfg(o, p);
  const LoadReport& report = (*pipe)->load_report();
  if (!o.quiet) {
    for (const ComponentLoad& c : report.components) std::fprintf(stderr, "ditrun: %s\n", describe_load(c).c_str());
    std::fprintf(stderr, "ditrun: %s; %s in %.2f s%s\nditrun: %lldx%lld, %d steps, guidance %.2f", (*pipe)->describe().c_str(),
                 o.load.offload ? "checked" : "loaded", report.seconds,
                 o.load.offload ? " (--offload: each component loads for its stage)" : "", (long long)p.width,
                 (long long)p.height, p.steps, p.guidance);
    if (p.runs_true_cfg()) std::fprintf(stderr, ", true CFG %.2f", *p.true_cfg);
    std::fprintf(stderr, ", seed %llu\n", (unsigned long long)p.seed);
    if (p.attention.any_sparse()) std::fprintf(stderr, "ditrun: attention %s\n", p.attention.describe().c_str());
  }
  double stage_loads = 0;
  const LoadFn on_load = [&](const ComponentLoad& c) {
    stage_loads += c.seconds;
    if (!o.quiet) std::fprintf(stderr, "ditrun: %s\n", describe_load(c).c_str());
  };
  const bool tty = isatty(fileno(stderr));
  double denoise_start = 0;
  ProgressFn progress = [&](const char* stage, int i, int n) {
    if (o.quiet) return;
    const std::string s(stage);
    if (s == "denoise") {
      if (i == 0) denoise_start = seconds();
      const double el = seconds() - denoise_start;
      const double eta = i > 0 ? el / i * (n - i) : 0;
      std::fprintf(stderr, "%sstep %d/%d  elapsed %.1fs  eta %.1fs%s", tty ? "\r" : "", i, n, el, eta,
                   tty && i < n ? "" : "\n");
    } else if (i == 0) {
      std::fprintf(stderr, "ditrun: %s...\n", stage);
    }
  };
  auto image = (*pipe)->generate(ctx, p, progress, on_load);
  if (!image) {
    std::fprintf(stderr, "ditrun generate: %s\n", image.status().message().c_str());
    return kExitFailure;
  }
  std::ostringstream params;
  // What ran: a negative_prompt line (possibly empty) only when true CFG did, and its scale, else 1.
  params << "prompt: " << p.prompt;
  if (p.runs_true_cfg()) params << "\nnegative_prompt: " << *p.negative_prompt;
  params << "\nwidth: " << p.width << "\nheight: " << p.height << "\nsteps: " << p.steps << "\nguidance: " << p.guidance
         << "\ntrue_cfg: " << (p.runs_true_cfg() ? *p.true_cfg : 1.f) << "\nseed: " << p.seed
         << "\nmax_sequence_length: " << p.max_sequence_length
         << "\nmodel: " << (o.paths.model.empty() ? o.paths.transformer : o.paths.model);
  if (p.attention.any_sparse()) params << "\nattention: " << p.attention.describe();
  if (auto st = write_png(o.out, image.value(), {{"parameters", params.str()}, {"Software", "ditrun 0.1.0"}}, o.overwrite); !st) {
    std::fprintf(stderr, "ditrun generate: %s\n", st.message().c_str());
    return kExitOutput;
  }
  if (!o.quiet) {
    if (o.load.offload) std::fprintf(stderr, "ditrun: components loaded in %.2f s in total\n", report.seconds + stage_loads);
    std::fprintf(stderr, "ditrun: wrote %s in %.1fs", o.out.c_str(), seconds());
    if (ctx.is_cuda()) std::fprintf(stderr, " (peak GPU memory %.2f GiB)", double(rt::memory_stats(ctx).peak) / double(1ull << 30));
    std::fprintf(stderr, "\n");
  }
  std::printf("%s\n", o.out.c_str());
  return kExitOk;
}

}  // namespace

Command add_generate_command(CLI::App& root) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* c = root.add_subcommand("generate", "Generate an image from a prompt");
  add_model_options(*c, o->paths);
  c->add_option("-p,--prompt", o->params.prompt, "What the image shows")->required();
  c->add_option("-n,--negative-prompt", o->params.negative_prompt,
                "What to steer away from with --true-cfg > 1; \"\" is the empty (unconditional) prompt, as in diffusers "
                "(default: the model's; none for Flux)");
  c->add_option("--true-cfg", o->params.true_cfg,
                "True classifier-free guidance scale (1 = off; > 1 runs the transformer twice per step; default: the model's, 1 for Flux)");
  c->add_option("-W,--width", o->params.width, "Image width in pixels, multiple of 16 (default: the model's; 1024 for Flux)");
  c->add_option("-H,--height", o->params.height, "Image height in pixels, multiple of 16 (default: the model's; 1024 for Flux)");
  c->add_option("--steps", o->params.steps, "Denoising steps (default: the model's; 28 for dev, 4 for schnell)");
  c->add_option("-g,--guidance", o->params.guidance, "Embedded guidance scale for guidance-distilled models (default 3.5)");
  c->add_option("-s,--seed", o->params.seed, "Seed of the initial noise (torch.randn on a CPU generator)")->capture_default_str();
  c->add_option("--max-sequence-length", o->params.max_sequence_length, "T5 tokens (default: the model's; 512 dev, 256 schnell)");
  c->add_option("-o,--out", o->out, "Output PNG path")->capture_default_str();
  c->add_flag("--overwrite", o->overwrite, "Replace --out if it exists");
  c->add_flag("-q,--quiet", o->quiet, "No progress on stderr");
  c->add_flag("--offload", o->load.offload,
              "Keep only the component in use (text encoders, transformer, VAE) on the device: peak memory = largest "
              "component + its activations instead of all of them; costs a reload of every component per generate call");
  CLI::Option* attention = c->add_option("--attention", o->attention,
                "Transformer attention method: dense, gna:window=1x16x16,stride=1x8x8 (NATTEN's rule per axis T x H x W; "
                "also dilation=, causal=) or grat:variant=B|X,group=1x16x16,radius=1")
      ->capture_default_str();
  CLI::Option* dense_steps =
      c->add_option("--dense-steps", o->dense_steps, "With a sparse --attention: run the first N denoising steps dense")
          ->capture_default_str();
  CLI::Option* dense_layers =
      c->add_option("--dense-layers", o->dense_layers,
                    "Transformer layers that always run dense, comma-separated (double blocks first, then single blocks: "
                    "0,5)")
          ->delimiter(',');
  c->add_option("--attention-config", o->attention_config,
                "JSON attention policy: {\"method\": \"gna:window=1x16x16,stride=1x8x8\", \"dense_steps\": 4, "
                "\"dense_layers\": [0, 5], \"layers\": {\"3\": \"grat:variant=B,group=1x8x8\"}} (every key optional; "
                "layers: per-layer methods). --attention, --dense-steps and --dense-layers given with it replace the "
                "file's method, dense_steps and dense_layers");
  c->add_flag("--no-attention-fallback", o->no_fallback,
              "Run sparse methods even where they cannot beat dense attention (tile density >= " +
                  fixed2(dit::flux::kDenseFallbackTileDensity) +
                  ", or a call the block-sparse kernel refuses); by default those calls run dense, with one line on "
                  "stderr saying why");
  c->add_option("--vae-tile", o->params.vae_tile, "Decode in overlapping tiles of this many pixels (0 = whole image; e.g. 512 bounds VAE memory)");
  add_device_options(*c, o->device);
  return {c, [o, attention, dense_steps, dense_layers] {
            o->attention_given = attention->count() > 0;
            o->dense_steps_given = dense_steps->count() > 0;
            o->dense_layers_given = dense_layers->count() > 0;
            return run_generate(*o);
          }};
}

}  // namespace app
