// `ditrun compare`: one prompt, seed and noise through full attention and each listed sparse method,
// with the pipeline loaded once. Writes one PNG per method, a side-by-side PNG and report.json to
// --out-dir, and prints a table: PSNR and SSIM against full, the evaluator's attribute score, the
// method's tile and FLOP density on the model's token grid (the sparse steps' work; dense warm-up steps
// are not counted) and the wall time of each generation.
// report.json writes an infinite PSNR (an image identical to full's) as null.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "app/commands/commands.h"
#include "app/commands/compare_metrics.h"
#include "app/commands/device_options.h"
#include "app/commands/exit_codes.h"
#include "app/io/png_writer.h"
#include "app/pipeline/flux_pipeline.h"
#include "base/out_of_memory.h"
#include "ops.h"
#include "dit/flux/attention_policy.h"

namespace app {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

struct CompareOptions {
  ModelPathArgs paths;
  GenerateParams params;
  std::string attention;  // "full,gna:window=...,stride=...,grat:..."
  int dense_steps = 0;
  std::string out_dir;
  bool overwrite = false;
  bool quiet = false;
  DeviceOptions device;
};

struct Entry {
  std::string text, name;  // as typed; file stem
  sattn::MethodSpec method;
  compare::Rgb8 image = {};
  rt::Tensor tensor = {};
  double seconds = 0;
};

int fail(int code, const std::string& msg) {
  std::fprintf(stderr, "ditrun compare: %s\n", msg.c_str());
  return code;
}

int usage_error(const std::string& msg) { return fail(kExitUsage, msg); }

// Splits the list at the commas that start a method ("dense", "full" or "name:..."); the other commas
// belong to a method's parameters (gna:window=1x8x8,stride=1x4x4).
std::vector<std::string> split_methods(const std::string& list) {
  std::vector<std::string> out;
  size_t begin = 0;
  while (begin <= list.size()) {
    size_t end = list.find(',', begin);
    if (end == std::string::npos) end = list.size();
    const std::string tok = list.substr(begin, end - begin);
    const size_t colon = tok.find(':');
    const bool starts = out.empty() || tok == "dense" || tok == "full" ||
                        (colon != std::string::npos && tok.substr(0, colon).find('=') == std::string::npos);
    if (starts) out.push_back(tok);
    else out.back() += "," + tok;
    begin = end + 1;
  }
  return out;
}

std::string file_stem(const Entry& e) {
  if (e.method.is_dense()) return "full";
  std::string s = e.text;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '_';
  return s;
}

// Full attention first (added when the list does not start with it), then the list; names made unique.
int parse_entries(const CompareOptions& o, std::vector<Entry>& entries) {
  if (o.dense_steps < 0) return usage_error("--dense-steps " + std::to_string(o.dense_steps) + " must be >= 0");
  for (const std::string& text : split_methods(o.attention)) {
    auto method = sattn::parse_method(text);
    if (!method) return usage_error("--attention " + text + ": " + method.status().message());
    entries.push_back({text, "", *method});
  }
  if (entries.empty() || !entries[0].method.is_dense()) entries.insert(entries.begin(), Entry{"full", "", {}});
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string stem = file_stem(entries[i]);
    entries[i].name = stem;
    for (int k = 2; std::any_of(entries.begin(), entries.begin() + i, [&](const Entry& e) { return e.name == entries[i].name; }); ++k)
      entries[i].name = stem + "_" + std::to_string(k);
  }
  return kExitOk;
}

int validate(const GenerateParams& p) {
  if (p.prompt.find_first_not_of(" \t\r\n") == std::string::npos) return usage_error("--prompt is empty");
  for (auto [name, v] : {std::pair{"width", p.width}, std::pair{"height", p.height}})
    if (v != 0 && (v < 16 || v > 8192 || v % 16 != 0))
      return usage_error(std::string("--") + name + " " + std::to_string(v) + " must be a multiple of 16 in 16..8192");
  if (p.steps < 0 || p.steps > 1000) return usage_error("--steps " + std::to_string(p.steps) + " is out of range; use 1..1000");
  return kExitOk;
}

// Every output is checked before the model loads; nothing is overwritten without --overwrite.
int check_outputs(const CompareOptions& o, const std::vector<Entry>& entries) {
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) {
    std::fprintf(stderr, "ditrun compare: --out-dir %s: %s\n", o.out_dir.c_str(), ec.message().c_str());
    return kExitOutput;
  }
  std::vector<std::string> pngs = {o.out_dir + "/side_by_side.png"};
  for (const Entry& e : entries) pngs.push_back(o.out_dir + "/" + e.name + ".png");
  for (const std::string& path : pngs)
    if (auto st = check_output_path(path, o.overwrite); !st) {
      std::fprintf(stderr, "ditrun compare: %s\n", st.message().c_str());
      return kExitOutput;
    }
  if (!o.overwrite && fs::exists(o.out_dir + "/report.json")) {
    std::fprintf(stderr, "ditrun compare: %s/report.json exists; pass --overwrite to replace it\n", o.out_dir.c_str());
    return kExitOutput;
  }
  return kExitOk;
}

// A sparse method must fit the image's token grid.
int check_fits(const Entry& e, const GenerateParams& p) {
  const std::string why = dit::flux::attention_fit_error(e.method, p.width, p.height, p.max_sequence_length);
  return why.empty() ? kExitOk : usage_error("--attention " + e.text + " " + why);
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

int write_report(const CompareOptions& o, const GenerateParams& p, const std::vector<Entry>& entries) {
  json methods = json::array();
  std::string eval_why;
  std::printf("%-44s %8s %7s %6s %6s %8s %6s\n", "method", "psnr_dB", "ssim", "tile", "flop", "seconds", "eval");
  for (const Entry& e : entries) {
    const double db = compare::psnr(entries[0].image, e.image);
    const std::optional<double> s = compare::ssim(entries[0].image, e.image);
    const compare::Densities d = compare::densities(e.method, p.width, p.height, p.max_sequence_length);
    const json ev = compare::evaluate(p.prompt, e.image, &eval_why);
    int correct = 0;
    if (ev.is_array())
      for (const json& r : ev) correct += r["correct"].get<bool>();
    methods.push_back({{"name", e.name}, {"spec", e.method.is_dense() ? "dense" : sattn::method_str(e.method)},
                       {"image", e.name + ".png"}, {"psnr", number_or_null(db)}, {"ssim", s ? json(*s) : json(nullptr)},
                       {"tile_density", d.tile}, {"flop_density", d.flop}, {"seconds", e.seconds}, {"evaluator", ev}});
    char psnr_s[16] = "inf", ssim_s[16] = "n/a", eval_s[16] = "-";
    if (std::isfinite(db)) std::snprintf(psnr_s, sizeof psnr_s, "%.2f", db);
    if (s) std::snprintf(ssim_s, sizeof ssim_s, "%.4f", *s);
    if (ev.is_array()) std::snprintf(eval_s, sizeof eval_s, "%d/%zu", correct, ev.size());
    std::printf("%-44s %8s %7s %6.3f %6.3f %8.2f %6s\n", e.name.c_str(), psnr_s, ssim_s, d.tile, d.flop, e.seconds, eval_s);
  }
  if (!compare::ssim(entries[0].image, entries[0].image)) std::printf("ssim: n/a (built without OpenCV)\n");
  if (!eval_why.empty() && !o.quiet) std::fprintf(stderr, "ditrun compare: no evaluator scores: %s\n", eval_why.c_str());
  const json report = {{"prompt", p.prompt}, {"seed", p.seed}, {"width", p.width}, {"height", p.height},
                       {"steps", p.steps}, {"dense_steps", o.dense_steps}, {"max_sequence_length", p.max_sequence_length},
                       {"side_by_side", "side_by_side.png"}, {"methods", methods}};
  const std::string path = o.out_dir + "/report.json", tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << report.dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "ditrun compare: cannot write %s\n", tmp.c_str());
      return kExitOutput;
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::fprintf(stderr, "ditrun compare: cannot write %s: %s\n", path.c_str(), ec.message().c_str());
    return kExitOutput;
  }
  return kExitOk;
}

int compare_with(const CompareOptions& o, const rt::Context& ctx, const ComponentPaths& model_paths, std::vector<Entry>& entries) {
  auto pipe = FluxPipeline::load(ctx, model_paths, {});
  if (!pipe) {
    std::fprintf(stderr, "ditrun compare: %s\n", pipe.status().message().c_str());
    return kExitModel;
  }
  GenerateParams p = (*pipe)->with_defaults(o.params);
  p.cuda_graph = o.device.cuda_graph;
  if (int rc = validate(p); rc != kExitOk) return rc;
  for (const Entry& e : entries)
    if (int rc = check_fits(e, p); rc != kExitOk) return rc;
  const ProgressFn progress = [](const char*, int, int) {};
  for (Entry& e : entries) {
    p.attention.method = e.method;
    p.attention.dense_steps = e.method.is_dense() ? 0 : o.dense_steps;
    if (!o.quiet) std::fprintf(stderr, "ditrun compare: %s...\n", e.name.c_str());
    const auto t0 = std::chrono::steady_clock::now();
    auto image = (*pipe)->generate(ctx, p, progress);
    e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!image) {
      std::fprintf(stderr, "ditrun compare: %s: %s\n", e.text.c_str(), image.status().message().c_str());
      return kExitFailure;
    }
    e.tensor = image.value();
    e.image = {to_rgb8(e.tensor), int(e.tensor.size(2)), int(e.tensor.size(1))};
    const std::string params = "prompt: " + p.prompt + "\nwidth: " + std::to_string(p.width) + "\nheight: " +
                               std::to_string(p.height) + "\nsteps: " + std::to_string(p.steps) + "\nseed: " +
                               std::to_string(p.seed) + "\nattention: " + p.attention.describe();
    if (auto st = write_png(o.out_dir + "/" + e.name + ".png", e.tensor, {{"parameters", params}, {"Software", "ditrun 0.1.0"}},
                            o.overwrite);
        !st) {
      std::fprintf(stderr, "ditrun compare: %s\n", st.message().c_str());
      return kExitOutput;
    }
  }
  std::vector<rt::Tensor> row;
  for (const Entry& e : entries) row.push_back(e.tensor);
  if (auto st = write_png(o.out_dir + "/side_by_side.png", rt::concat(ctx, row, 2), {{"Software", "ditrun 0.1.0"}}, o.overwrite);
      !st) {
    std::fprintf(stderr, "ditrun compare: %s\n", st.message().c_str());
    return kExitOutput;
  }
  return write_report(o, p, entries);
}

int run_compare(const CompareOptions& o) {
  std::vector<Entry> entries;
  if (int rc = parse_entries(o, entries); rc != kExitOk) return rc;
  if (int rc = validate(o.params); rc != kExitOk) return rc;
  if (int rc = check_outputs(o, entries); rc != kExitOk) return rc;
  auto paths = resolve_model_paths(o.paths);
  if (!paths) {
    std::fprintf(stderr, "ditrun compare: %s\n", paths.status().message().c_str());
    return kExitModel;
  }
  auto made = make_context(o.device, o.quiet ? rt::LogLevel::Quiet : rt::LogLevel::Info);
  if (!made) return usage_error(made.status().message());
  try {
    return compare_with(o, made.value(), *paths, entries);
  } catch (const rt::OutOfMemory& e) {
    return fail(kExitFailure, e.what());
  }
}

}  // namespace

Command add_compare_command(CLI::App& root) {
  auto o = std::make_shared<CompareOptions>();
  CLI::App* c = root.add_subcommand("compare", "Generate one prompt with full attention and sparse methods; compare them");
  c->add_option("--model", o->paths.model, "diffusers Flux folder; default: the embedded model");
  c->add_option("-p,--prompt", o->params.prompt, "What the image shows")->required();
  c->add_option("-s,--seed", o->params.seed, "Seed of the initial noise, shared by every method")->capture_default_str();
  c->add_option("-W,--width", o->params.width, "Image width in pixels, multiple of 16 (default: the model's)");
  c->add_option("-H,--height", o->params.height, "Image height in pixels, multiple of 16 (default: the model's)");
  c->add_option("--steps", o->params.steps, "Denoising steps (default: the model's)");
  c->add_option("--attention", o->attention,
                "Methods to compare with full attention, comma-separated: full, gna:window=1x16x16,stride=1x8x8, "
                "grat:variant=B,group=1x16x16,radius=1, ... (full runs first even when not listed)")
      ->required();
  c->add_option("--dense-steps", o->dense_steps, "Sparse methods run the first N denoising steps dense")->capture_default_str();
  c->add_option("--out-dir", o->out_dir, "Folder for the PNGs, side_by_side.png and report.json (created if needed)")->required();
  c->add_flag("--overwrite", o->overwrite, "Replace existing outputs in --out-dir");
  c->add_flag("-q,--quiet", o->quiet, "No progress on stderr");
  add_device_options(*c, o->device);
  return {c, [o] { return run_compare(*o); }};
}

}  // namespace app
