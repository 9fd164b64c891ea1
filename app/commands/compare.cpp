// `ditrun compare`: prompts, seeds and noise through full attention and each listed sparse method, with
// the pipeline loaded once. One prompt (--prompt): one PNG per method, a side-by-side PNG and report.json in
// --out-dir. A prompts file (--prompts, JSON lines with "prompt" and optional "seed" / "image", or plain
// lines): <out-dir>/<method>/<image>.png per prompt and a report.json with per-prompt rows and a summary
// per method (mean and worst PSNR, mean SSIM, evaluator accuracy per attribute and its difference to full).
// Printed per method: PSNR and SSIM against full, the evaluator's score, the method's tile and FLOP density
// on the model's token grid (the sparse steps' work; dense warm-up steps are not counted), the time of one
// attention call on that grid (timed alone) and the generation's wall time (after an untimed warm-up).
// report.json writes an infinite PSNR (an image identical to full's) as null. A list entry `config:FILE` is an
// attention config file (generate's --attention-config: a method, per-layer methods, dense steps and layers);
// its dense_steps and dense_layers replace the flags' for that entry. "step" is the FLOP density over a sparse
// step's layers (dense layers count 1), the share of attention work a step after the warm-up still does.
#include <algorithm>
#include <map>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>

#include "app/commands/commands.h"
#include "app/commands/compare_metrics.h"
#include "app/commands/compare_timing.h"
#include "app/commands/device_options.h"
#include "app/commands/model_options.h"
#include "app/commands/exit_codes.h"
#include "app/io/png_writer.h"
#include "app/pipeline/attention_config.h"
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
  std::vector<int> dense_layers;  // layers every sparse method leaves dense (as generate's --dense-layers)
  std::string prompts_file;  // --prompts: many prompts instead of --prompt
  int limit = 0;             // first N prompts of the file (0 = all)
  bool score_existing = false;  // score the PNGs already in --out-dir instead of generating
  std::string out_dir;
  bool overwrite = false;
  bool quiet = false;
  DeviceOptions device;
};

// One prompt of the run: what to generate and the file stem of its images.
struct Item {
  std::string prompt;
  uint64_t seed = 42;
  std::string stem;
};

// Per-method results over the prompts, for the summary.
struct Totals {
  std::vector<double> psnr, ssim, seconds;
  std::map<std::string, std::pair<int, int>> attributes;  // attribute -> (correct, scored)
  int all_correct = 0, scored_images = 0;
};

struct Entry {
  std::string text, name;  // as typed; file stem
  sattn::MethodSpec method;
  // config:FILE entries: per-layer methods in place of `method`, and the file's dense_steps / dense_layers
  // (when it sets them) in place of the flags'.
  std::map<int, sattn::MethodSpec> layer_methods;
  std::optional<int> dense_steps;
  std::optional<std::vector<int>> dense_layers;
  compare::Rgb8 image = {};  // of the current prompt
  rt::Tensor tensor = {};
  double seconds = 0;
  double attention_ms = 0;
  Totals totals;
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

bool is_full(const Entry& e) { return e.method.is_dense() && e.layer_methods.empty(); }

// The attention policy an entry generates with: full attention for full, else its methods after the warm-up
// steps, with its dense layers.
dit::flux::AttentionPolicy policy_of(const CompareOptions& o, const Entry& e) {
  dit::flux::AttentionPolicy policy;
  policy.method = e.method;
  policy.layer_methods = e.layer_methods;
  if (is_full(e)) return policy;
  policy.dense_steps = e.dense_steps.value_or(o.dense_steps);
  policy.dense_layers = e.dense_layers.value_or(o.dense_layers);
  return policy;
}

std::string file_stem(const Entry& e) {
  if (is_full(e)) return "full";
  std::string s = e.text.rfind("config:", 0) == 0 ? "config_" + fs::path(e.text.substr(7)).stem().string() : e.text;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '_';
  return s;
}

// Full attention first (added when the list does not start with it), then the list; names made unique.
int parse_entries(const CompareOptions& o, std::vector<Entry>& entries) {
  if (o.dense_steps < 0) return usage_error("--dense-steps " + std::to_string(o.dense_steps) + " must be >= 0");
  for (int l : o.dense_layers)
    if (l < 0) return usage_error("--dense-layers " + std::to_string(l) + ": layer indices are >= 0");
  for (const std::string& text : split_methods(o.attention)) {
    Entry e;
    e.text = text;
    if (text.rfind("config:", 0) == 0) {
      auto config = load_attention_config(text.substr(7));
      if (!config) return usage_error("--attention " + text + ": " + config.status().message());
      e.method = config->policy.method;
      e.layer_methods = config->policy.layer_methods;
      if (config->has_dense_steps) e.dense_steps = config->policy.dense_steps;
      if (config->has_dense_layers) e.dense_layers = config->policy.dense_layers;
      if (is_full(e))
        return usage_error("--attention " + text + ": the file names no sparse method (\"method\" or \"layers\"); "
                           "list full attention as full");
    } else {
      auto method = sattn::parse_method(text);
      if (!method) return usage_error("--attention " + text + ": " + method.status().message());
      e.method = *method;
    }
    entries.push_back(e);
  }
  if (entries.empty() || !is_full(entries[0])) {
    Entry full;
    full.text = "full";
    entries.insert(entries.begin(), full);
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string stem = file_stem(entries[i]);
    entries[i].name = stem;
    for (int k = 2; std::any_of(entries.begin(), entries.begin() + i, [&](const Entry& e) { return e.name == entries[i].name; }); ++k)
      entries[i].name = stem + "_" + std::to_string(k);
  }
  return kExitOk;
}

int validate(const GenerateParams& p, bool need_prompt) {
  if (need_prompt && p.prompt.find_first_not_of(" \t\r\n") == std::string::npos) return usage_error("--prompt is empty");
  for (auto [name, v] : {std::pair{"width", p.width}, std::pair{"height", p.height}})
    if (v != 0 && (v < 16 || v > 8192 || v % 16 != 0))
      return usage_error(std::string("--") + name + " " + std::to_string(v) + " must be a multiple of 16 in 16..8192");
  if (p.steps < 0 || p.steps > 1000) return usage_error("--steps " + std::to_string(p.steps) + " is out of range; use 1..1000");
  return kExitOk;
}

// --prompts: JSON lines {"prompt": ..., "seed": N, "image": "0001.png"} (seed and image optional) or plain
// lines; blank lines are skipped. Seeds default to --seed, image stems to the line number.
int read_items(const CompareOptions& o, std::vector<Item>& items) {
  std::ifstream in(o.prompts_file);
  if (!in) return usage_error("--prompts " + o.prompts_file + ": cannot read the file");
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    char stem[32];
    std::snprintf(stem, sizeof stem, "%04d", n);
    Item it{line, o.params.seed, stem};
    if (line[0] == '{') {
      const json j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.contains("prompt") || !j["prompt"].is_string())
        return usage_error("--prompts " + o.prompts_file + " line " + std::to_string(n) +
                           ": expected a JSON object with a \"prompt\" string (or a plain-text prompt)");
      it.prompt = j["prompt"].get<std::string>();
      if (j.contains("seed") && j["seed"].is_number_unsigned()) it.seed = j["seed"].get<uint64_t>();
      if (j.contains("image") && j["image"].is_string()) it.stem = fs::path(j["image"].get<std::string>()).stem().string();
    }
    if (it.prompt.find_first_not_of(" \t\r") == std::string::npos)
      return usage_error("--prompts " + o.prompts_file + " line " + std::to_string(n) + ": the prompt is empty");
    items.push_back(it);
    if (o.limit > 0 && int(items.size()) == o.limit) break;
  }
  if (items.empty()) return usage_error("--prompts " + o.prompts_file + ": no prompts in the file");
  return kExitOk;
}

bool many(const CompareOptions& o) { return !o.prompts_file.empty(); }

std::string image_path(const CompareOptions& o, const Entry& e, const Item& it) {
  return many(o) ? o.out_dir + "/" + e.name + "/" + it.stem + ".png" : o.out_dir + "/" + e.name + ".png";
}

// Every output is checked before the model loads; nothing is overwritten without --overwrite.
int check_outputs(const CompareOptions& o, const std::vector<Entry>& entries, const std::vector<Item>& items) {
  if (!o.overwrite && fs::exists(o.out_dir + "/report.json")) {
    std::fprintf(stderr, "ditrun compare: %s/report.json exists; pass --overwrite to replace it\n", o.out_dir.c_str());
    return kExitOutput;
  }
  if (o.score_existing) {
    for (const Entry& e : entries)
      for (const Item& it : items)
        if (!fs::exists(image_path(o, e, it))) {
          std::fprintf(stderr, "ditrun compare: --score-existing: %s is missing (generate it first, e.g. on a GPU)\n",
                       image_path(o, e, it).c_str());
          return kExitOutput;
        }
    return kExitOk;
  }
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  for (const Entry& e : entries)
    if (!ec && many(o)) fs::create_directories(o.out_dir + "/" + e.name, ec);
  if (ec) {
    std::fprintf(stderr, "ditrun compare: --out-dir %s: %s\n", o.out_dir.c_str(), ec.message().c_str());
    return kExitOutput;
  }
  std::vector<std::string> pngs;
  if (!many(o)) pngs.push_back(o.out_dir + "/side_by_side.png");
  for (const Entry& e : entries)
    for (const Item& it : items) pngs.push_back(image_path(o, e, it));
  for (const std::string& path : pngs)
    if (auto st = check_output_path(path, o.overwrite); !st) {
      std::fprintf(stderr, "ditrun compare: %s\n", st.message().c_str());
      return kExitOutput;
    }
  return kExitOk;
}

// Every sparse method of an entry must fit the image's token grid.
int check_fits(const Entry& e, const GenerateParams& p) {
  std::vector<sattn::MethodSpec> methods = {e.method};
  for (const auto& [layer, m] : e.layer_methods) methods.push_back(m);
  for (const sattn::MethodSpec& m : methods)
    if (const std::string why = dit::flux::attention_fit_error(m, p.width, p.height, p.max_sequence_length); !why.empty())
      return usage_error("--attention " + e.text + " " + why);
  return kExitOk;
}

// The FLOP density over a sparse step's num_layers layers: dense layers count 1, the others their method's
// FLOP density (densities cached by method, some plan slowly).
double step_flop_density(const CompareOptions& o, const Entry& e, const GenerateParams& p, int num_layers,
                         std::map<std::string, double>& cache) {
  if (is_full(e) || num_layers <= 0) return 1.0;
  const dit::flux::AttentionPolicy policy = policy_of(o, e);
  const int sparse_step = policy.dense_steps;  // the first step after the warm-up
  double sum = 0;
  for (int layer = 0; layer < num_layers; ++layer) {
    const sattn::MethodSpec m = policy.method_for(sparse_step, layer);
    if (m.is_dense()) {
      sum += 1.0;
      continue;
    }
    const std::string key = sattn::method_str(m);
    auto it = cache.find(key);
    if (it == cache.end()) it = cache.emplace(key, compare::densities(m, p.width, p.height, p.max_sequence_length).flop).first;
    sum += it->second;
  }
  return sum / num_layers;
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// The report's "spec": the method, or for config:FILE entries the whole policy (per-layer methods, dense
// steps and layers).
std::string spec_of(const CompareOptions& o, const Entry& e) {
  if (is_full(e)) return "dense";
  return e.text.rfind("config:", 0) == 0 ? policy_of(o, e).describe() : sattn::method_str(e.method);
}

int write_json(const std::string& path, const json& j) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump(2) << "\n";
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

// The current prompt's metrics of every method against full (entries[0]); adds them to the totals.
json score_prompt(std::vector<Entry>& entries, const std::string& prompt, std::string* eval_why) {
  json methods = json::array();
  for (Entry& e : entries) {
    const double db = compare::psnr(entries[0].image, e.image);
    const std::optional<double> s = compare::ssim(entries[0].image, e.image);
    const json ev = compare::evaluate(prompt, e.image, eval_why);
    Totals& t = e.totals;
    if (&e != &entries[0]) t.psnr.push_back(db);
    if (s) t.ssim.push_back(*s);
    t.seconds.push_back(e.seconds);
    int correct = 0;
    if (ev.is_array()) {
      for (const json& r : ev) {
        auto& [ok, n] = t.attributes[r["attribute"].get<std::string>()];
        ok += r["correct"].get<bool>();
        ++n;
        correct += r["correct"].get<bool>();
      }
      t.all_correct += correct == int(ev.size());
      ++t.scored_images;
    }
    methods.push_back({{"name", e.name}, {"psnr", number_or_null(db)}, {"ssim", s ? json(*s) : json(nullptr)},
                       {"seconds", e.seconds}, {"evaluator", ev}});
  }
  return methods;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  int n = 0;
  for (double x : v)
    if (std::isfinite(x)) s += x, ++n;
  return n ? s / n : std::nan("");
}

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

double accuracy(const Totals& t) {
  int ok = 0, n = 0;
  for (const auto& [name, c] : t.attributes) ok += c.first, n += c.second;
  return n ? 100.0 * ok / n : std::nan("");
}

// One row per method: densities, attention call time, PSNR/SSIM against full, evaluator accuracy
// (every attribute of every image, in %) and its difference to full's, median generation seconds.
json summarize(const CompareOptions& o, const GenerateParams& p, const std::vector<Entry>& entries, int num_layers,
               bool print) {
  json rows = json::array();
  if (print)
    std::printf("%-40s %6s %6s %6s %8s %9s %8s %7s %7s %8s\n", "method", "tile", "flop", "step", "attn_ms", "psnr_dB",
                "min_dB", "ssim", "eval%", "seconds");
  const double full_acc = accuracy(entries[0].totals);
  std::map<std::string, double> cache;
  for (const Entry& e : entries) {
    const compare::Densities d = compare::densities(e.method, p.width, p.height, p.max_sequence_length);
    const double step = step_flop_density(o, e, p, num_layers, cache);
    const Totals& t = e.totals;
    const double psnr_mean = mean(t.psnr), ssim_mean = mean(t.ssim), acc = accuracy(t);
    double worst = std::numeric_limits<double>::infinity();
    for (double x : t.psnr) worst = std::min(worst, x);
    json attrs = json::object();
    for (const auto& [name, c] : t.attributes) attrs[name] = 100.0 * c.first / c.second;
    rows.push_back({{"name", e.name}, {"spec", spec_of(o, e)}, {"tile_density", d.tile}, {"flop_density", d.flop},
                    {"step_flop_density", step}, {"attention_ms", number_or_null(e.attention_ms)},
                    {"psnr_mean", number_or_null(psnr_mean)}, {"psnr_min", number_or_null(worst)},
                    {"ssim_mean", number_or_null(ssim_mean)}, {"evaluator_accuracy", number_or_null(acc)},
                    {"evaluator_vs_full", number_or_null(acc - full_acc)}, {"evaluator_attributes", attrs},
                    {"all_correct", t.scored_images ? json(100.0 * t.all_correct / t.scored_images) : json(nullptr)},
                    {"seconds_median", number_or_null(median(t.seconds))}});
    if (!print) continue;
    char psnr_s[16] = "inf", min_s[16] = "inf", ssim_s[16] = "n/a", eval_s[16] = "-";
    if (std::isfinite(psnr_mean)) std::snprintf(psnr_s, sizeof psnr_s, "%.2f", psnr_mean);
    if (std::isfinite(worst)) std::snprintf(min_s, sizeof min_s, "%.2f", worst);
    if (std::isfinite(ssim_mean)) std::snprintf(ssim_s, sizeof ssim_s, "%.4f", ssim_mean);
    if (std::isfinite(acc)) std::snprintf(eval_s, sizeof eval_s, "%.1f", acc);
    std::printf("%-40s %6.3f %6.3f %6.3f %8.3f %9s %8s %7s %7s %8.2f\n", e.name.c_str(), d.tile, d.flop, step,
                e.attention_ms, psnr_s, min_s, ssim_s, eval_s, median(t.seconds));
  }
  return rows;
}

int write_single_report(const CompareOptions& o, const GenerateParams& p, const std::vector<Entry>& entries,
                        int num_layers, const json& scored) {
  json methods = json::array();
  std::map<std::string, double> cache;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    const compare::Densities d = compare::densities(e.method, p.width, p.height, p.max_sequence_length);
    json m = scored[i];
    m["spec"] = spec_of(o, e);
    m["image"] = e.name + ".png";
    m["tile_density"] = d.tile;
    m["flop_density"] = d.flop;
    m["step_flop_density"] = step_flop_density(o, e, p, num_layers, cache);
    m["attention_ms"] = number_or_null(e.attention_ms);
    methods.push_back(m);
  }
  const json report = {{"prompt", p.prompt}, {"seed", p.seed}, {"width", p.width}, {"height", p.height},
                       {"steps", p.steps}, {"dense_steps", o.dense_steps}, {"dense_layers", o.dense_layers},
                       {"max_sequence_length", p.max_sequence_length}, {"side_by_side", "side_by_side.png"}, {"methods", methods}};
  return write_json(o.out_dir + "/report.json", report);
}

// --score-existing: the entries' images of `it` from their PNGs (written by an earlier run).
int load_item(const CompareOptions& o, const Item& it, std::vector<Entry>& entries) {
  for (Entry& e : entries) {
    int w = 0, h = 0;
    auto px = read_png_rgb8(image_path(o, e, it), &w, &h);
    if (!px) {
      std::fprintf(stderr, "ditrun compare: %s\n", px.status().message().c_str());
      return kExitOutput;
    }
    e.image = {std::move(px.value()), w, h};
    e.seconds = std::nan("");
  }
  return kExitOk;
}

// Generates `it` with every method into the entries' images and PNGs.
int run_item(const CompareOptions& o, const rt::Context& ctx, const FluxPipeline& pipe, GenerateParams p, const Item& it,
             std::vector<Entry>& entries) {
  p.prompt = it.prompt;
  p.seed = it.seed;
  const ProgressFn progress = [](const char*, int, int) {};
  for (Entry& e : entries) {
    const dit::flux::AttentionPolicy policy = policy_of(o, e);
    p.attention.method = policy.method;
    p.attention.layer_methods = policy.layer_methods;
    p.attention.dense_steps = policy.dense_steps;
    p.attention.dense_layers = policy.dense_layers;
    const auto t0 = std::chrono::steady_clock::now();
    auto image = pipe.generate(ctx, p, progress);
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
    if (auto st = write_png(image_path(o, e, it), e.tensor, {{"parameters", params}, {"Software", "ditrun 0.1.0"}}, o.overwrite);
        !st) {
      std::fprintf(stderr, "ditrun compare: %s\n", st.message().c_str());
      return kExitOutput;
    }
  }
  return kExitOk;
}

int compare_with(const CompareOptions& o, const rt::Context& ctx, const ComponentPaths& model_paths,
                 std::vector<Entry>& entries, const std::vector<Item>& items) {
  auto pipe = FluxPipeline::load(ctx, model_paths, {});
  if (!pipe) {
    std::fprintf(stderr, "ditrun compare: %s\n", pipe.status().message().c_str());
    return kExitModel;
  }
  GenerateParams p = (*pipe)->with_defaults(o.params);
  p.cuda_graph = o.device.cuda_graph;
  if (int rc = validate(p, false); rc != kExitOk) return rc;
  for (const Entry& e : entries)
    if (int rc = check_fits(e, p); rc != kExitOk) return rc;

  const dit::flux::Config& cfg = (*pipe)->transformer_config();
  const int num_layers = int(cfg.depth + cfg.depth_single);
  dit::flux::AttentionPolicy layers;
  layers.dense_layers = o.dense_layers;
  if (std::string why = layers.layer_error(num_layers); !why.empty()) return usage_error("--dense-layers: " + why);
  for (const Entry& e : entries)
    if (std::string why = policy_of(o, e).layer_error(num_layers); !why.empty() && e.text.rfind("config:", 0) == 0)
      return usage_error("--attention " + e.text + ": " + why);
  const sattn::TokenLayout tokens = dit::flux::joint_tokens(p.max_sequence_length, p.height / 16, p.width / 16);
  for (Entry& e : entries)
    e.attention_ms = o.score_existing ? std::nan("") : compare::attention_call_ms(ctx, e.method, tokens, cfg.num_heads, cfg.head_dim);
  if (!o.score_existing) {
    // One-time setup (kernel plans, CUDA graph capture) would otherwise be timed in the first generation.
    GenerateParams warm = p;
    warm.prompt = items[0].prompt;
    warm.steps = std::min(p.steps, 3);
    if (auto w = (*pipe)->generate(ctx, warm, [](const char*, int, int) {}); !w) {
      std::fprintf(stderr, "ditrun compare: %s\n", w.status().message().c_str());
      return kExitFailure;
    }
  }
  std::string eval_why;
  json rows = json::array(), last;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!o.quiet) std::fprintf(stderr, "\rditrun compare: prompt %zu/%zu", i + 1, items.size());
    const int rc = o.score_existing ? load_item(o, items[i], entries) : run_item(o, ctx, **pipe, p, items[i], entries);
    if (rc != kExitOk) return rc;
    last = score_prompt(entries, items[i].prompt, &eval_why);
    rows.push_back({{"prompt", items[i].prompt}, {"seed", items[i].seed}, {"image", items[i].stem + ".png"}, {"methods", last}});
  }
  if (!o.quiet) std::fprintf(stderr, "\n");
  if (!eval_why.empty() && !o.quiet) std::fprintf(stderr, "ditrun compare: no evaluator scores: %s\n", eval_why.c_str());
  const json summary = summarize(o, p, entries, num_layers, true);
  if (!compare::ssim(entries[0].image, entries[0].image)) std::printf("ssim: n/a (built without OpenCV)\n");
  if (!many(o)) {
    std::vector<rt::Tensor> row;
    for (const Entry& e : entries) row.push_back(e.tensor);
    if (auto st = write_png(o.out_dir + "/side_by_side.png", rt::concat(ctx, row, 2), {{"Software", "ditrun 0.1.0"}}, o.overwrite);
        !st) {
      std::fprintf(stderr, "ditrun compare: %s\n", st.message().c_str());
      return kExitOutput;
    }
    p.prompt = items[0].prompt;
    p.seed = items[0].seed;
    return write_single_report(o, p, entries, num_layers, last);
  }
  const json report = {{"prompts_file", o.prompts_file}, {"prompts", items.size()}, {"width", p.width},
                       {"height", p.height}, {"steps", p.steps}, {"dense_steps", o.dense_steps},
                       {"dense_layers", o.dense_layers}, {"max_sequence_length", p.max_sequence_length},
                       {"summary", summary}, {"items", rows}};
  return write_json(o.out_dir + "/report.json", report);
}

int run_compare(const CompareOptions& o) {
  std::vector<Entry> entries;
  if (int rc = parse_entries(o, entries); rc != kExitOk) return rc;
  if (o.params.prompt.empty() == o.prompts_file.empty()) return usage_error("give either --prompt or --prompts");
  if (o.score_existing && !many(o)) return usage_error("--score-existing needs --prompts");
  if (int rc = validate(o.params, !many(o)); rc != kExitOk) return rc;
  std::vector<Item> items;
  if (many(o)) {
    if (int rc = read_items(o, items); rc != kExitOk) return rc;
  } else {
    items.push_back({o.params.prompt, o.params.seed, ""});
  }
  if (int rc = check_outputs(o, entries, items); rc != kExitOk) return rc;
  auto paths = resolve_model_paths(o.paths);
  if (!paths) {
    std::fprintf(stderr, "ditrun compare: %s\n", paths.status().message().c_str());
    return kExitModel;
  }
  auto made = make_context(o.device, o.quiet ? rt::LogLevel::Quiet : rt::LogLevel::Info);
  if (!made) return usage_error(made.status().message());
  try {
    return compare_with(o, made.value(), *paths, entries, items);
  } catch (const rt::OutOfMemory& e) {
    return fail(kExitFailure, e.what());
  }
}

}  // namespace

Command add_compare_command(CLI::App& root) {
  auto o = std::make_shared<CompareOptions>();
  CLI::App* c = root.add_subcommand("compare", "Generate one prompt with full attention and sparse methods; compare them");
  add_model_options(*c, o->paths);
  c->add_option("-p,--prompt", o->params.prompt, "What the image shows (or --prompts)");
  c->add_option("--prompts", o->prompts_file,
                "A prompts file instead of --prompt: JSON lines {\"prompt\": ..., \"seed\": N, \"image\": \"0001.png\"} "
                "(seed, image optional) or plain lines; images go to <out-dir>/<method>/, report.json gets a summary");
  c->add_option("--limit", o->limit, "With --prompts: the first N prompts only");
  c->add_flag("--score-existing", o->score_existing,
              "With --prompts: score the PNGs an earlier run left in --out-dir (e.g. generated on a GPU machine "
              "without OpenCV) instead of generating; writes report.json (needs --overwrite if one exists)");
  c->add_option("-s,--seed", o->params.seed, "Seed of the initial noise, shared by every method")->capture_default_str();
  c->add_option("-W,--width", o->params.width, "Image width in pixels, multiple of 16 (default: the model's)");
  c->add_option("-H,--height", o->params.height, "Image height in pixels, multiple of 16 (default: the model's)");
  c->add_option("--steps", o->params.steps, "Denoising steps (default: the model's)");
  c->add_option("--attention", o->attention,
                "Methods to compare with full attention, comma-separated: full, gna:window=1x16x16,stride=1x8x8, "
                "grat:variant=B,group=1x16x16,radius=1, ..., or config:FILE.json (an attention config as generate's "
                "--attention-config: per-layer methods; its dense_steps/dense_layers replace the flags') (full runs "
                "first even when not listed)")
      ->required();
  c->add_option("--dense-steps", o->dense_steps, "Sparse methods run the first N denoising steps dense")->capture_default_str();
  c->add_option("--dense-layers", o->dense_layers,
                "Transformer layers that sparse methods leave dense, comma-separated (double blocks first, then single "
                "blocks: 0,5)")
      ->delimiter(',');
  c->add_option("--out-dir", o->out_dir, "Folder for the PNGs, side_by_side.png and report.json (created if needed)")->required();
  c->add_flag("--overwrite", o->overwrite, "Replace existing outputs in --out-dir");
  c->add_flag("-q,--quiet", o->quiet, "No progress on stderr");
  add_device_options(*c, o->device);
  return {c, [o] { return run_compare(*o); }};
}

}  // namespace app
