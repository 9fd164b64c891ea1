// `ditrun evaluate --prompts FILE --images DIR`: scores images of the procedural shapes world against
// their prompts with the deterministic evaluator in app/evaluate (no model involved), printing
// per-attribute accuracy; --verbose adds one line per image, --json writes per-image details.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "app/commands/commands.h"
#include "app/commands/exit_codes.h"
#include "app/evaluate/score.h"

namespace app {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

struct EvaluateOptions {
  std::string prompts, images, json_out;
  std::string spec = DITRUN_WORLD_SPEC;
  bool verbose = false;
};

struct Item {
  std::string prompt, image;
  eval::ExpectedScene expected;
};

// JSONL lines {"prompt": ..., "image": ...} or plain prompt lines (images 0000.png, 0001.png, ...).
rt::Result<std::vector<Item>> read_prompts(const std::string& path, const eval::WorldSpec& spec) {
  std::ifstream in(path);
  if (!in) return rt::Status::error("prompts file " + path + ": cannot open it");
  std::vector<Item> items;
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(lineno) + ": ";
    Item it;
    char name[32];
    std::snprintf(name, sizeof name, "%04zu.png", items.size());
    it.image = name;
    if (line[line.find_first_not_of(" \t")] == '{') {
      try {
        const json j = json::parse(line);
        if (!j.contains("prompt") || !j["prompt"].is_string())
          return rt::Status::error(where + "expected a string \"prompt\" field, got " + line);
        it.prompt = j["prompt"].get<std::string>();
        if (j.contains("image")) it.image = j["image"].get<std::string>();
      } catch (const json::exception& e) {
        return rt::Status::error(where + "not valid JSON (" + e.what() + ")\n  hint: one {\"prompt\": ..., "
                                 "\"image\": ...} object per line, or plain prompt lines");
      }
    } else {
      it.prompt = line;
      while (!it.prompt.empty() && it.prompt.back() == '\r') it.prompt.pop_back();
    }
    auto parsed = eval::parse_caption(it.prompt, spec);
    if (!parsed) return parsed.status().with_context(where);
    it.expected = std::move(parsed).value();
    items.push_back(std::move(it));
  }
  if (items.empty()) return rt::Status::error("prompts file " + path + ": no prompts in it");
  return items;
}

std::string describe(const eval::ExpectedObject& o) { return o.size + " " + o.color + " " + o.shape + " " + o.position; }

std::string describe(const eval::DetectedObject& o) {
  char buf[96];
  std::snprintf(buf, sizeof buf, " (d=%.3f at %.2f,%.2f)", o.diameter, o.cx, o.cy);
  return o.size + " " + o.color + " " + o.shape + " " + o.position + buf;
}

json features_json(const eval::ShapeFeatures& f) {
  return {{"area", f.area}, {"outer_area", f.outer_area}, {"hole_ratio", f.hole_ratio},
          {"enclosing_fill", f.enclosing_fill}, {"solidity", f.solidity}, {"circularity", f.circularity},
          {"extent", f.extent}, {"enclosing_radius", f.enclosing_radius}, {"vertices", f.vertices},
          {"deep_defects", f.deep_defects},
          {"harmonic4", f.harmonic4}, {"harmonic5", f.harmonic5}};
}

json image_json(const Item& it, const eval::Analysis& a, const eval::ImageScore& s) {
  json objs = json::array();
  for (const auto& o : a.objects)
    objs.push_back({{"color", o.color}, {"shape", o.shape}, {"size", o.size}, {"position", o.position},
                    {"rgb", {o.rgb[0], o.rgb[1], o.rgb[2]}}, {"color_distance", o.color_distance},
                    {"diameter", o.diameter}, {"cx", o.cx}, {"cy", o.cy}, {"features", features_json(o.f)}});
  json results = json::array();
  bool all = true;
  for (const auto& r : s.results) {
    results.push_back({{"attribute", r.attribute}, {"object", r.object}, {"expected", r.expected},
                       {"detected", r.detected}, {"correct", r.correct}});
    all = all && r.correct;
  }
  return {{"image", it.image}, {"prompt", it.prompt}, {"all_correct", all},
          {"detected", {{"background", a.background}, {"texture", a.texture}, {"texture_share", a.texture_share},
                        {"background_rgb", {a.background_rgb[0], a.background_rgb[1], a.background_rgb[2]}},
                        {"objects", objs}}},
          {"match", s.match}, {"results", results}};
}

void print_verbose(const Item& it, const eval::Analysis& a, const eval::ImageScore& s) {
  std::string wrong;
  for (const auto& r : s.results)
    if (!r.correct)
      wrong += " " + r.attribute + (r.object >= 0 ? "[" + std::to_string(r.object + 1) + "]" : "") + ":" + r.expected +
               "->" + r.detected;
  std::string exp = it.expected.background + " " + it.expected.texture, det = a.background + " " + a.texture;
  for (const auto& o : it.expected.objects) exp += "; " + describe(o);
  for (const auto& o : a.objects) det += "; " + describe(o);
  std::printf("%s %s%s\n    expected: %s\n    detected: %s\n", it.image.c_str(), wrong.empty() ? "ok" : "WRONG",
              wrong.c_str(), exp.c_str(), det.c_str());
}

int run_evaluate(const EvaluateOptions& o) {
  auto spec = eval::load_world_spec(o.spec);
  if (!spec) {
    std::fprintf(stderr, "ditrun evaluate: %s\n", spec.status().message().c_str());
    return kExitModel;
  }
  auto items = read_prompts(o.prompts, *spec);
  if (!items) {
    std::fprintf(stderr, "ditrun evaluate: %s\n", items.status().message().c_str());
    return kExitModel;
  }
  eval::Tally tally;
  int all_correct = 0;
  json images = json::array();
  for (const Item& it : *items) {
    const std::string path = (fs::path(o.images) / it.image).string();
    auto rgb = eval::load_rgb(path);
    if (!rgb) {
      std::fprintf(stderr, "ditrun evaluate: %s (prompt \"%s\")\n  hint: --images is the folder the prompts' "
                   "image names are relative to\n", rgb.status().message().c_str(), it.prompt.c_str());
      return kExitFailure;
    }
    const eval::Analysis a = eval::analyze_image(*rgb, *spec);
    const eval::ImageScore s = eval::score_image(it.expected, a, *spec);
    tally.add(s);
    all_correct += std::all_of(s.results.begin(), s.results.end(), [](const auto& r) { return r.correct; });
    if (o.verbose) print_verbose(it, a, s);
    if (!o.json_out.empty()) images.push_back(image_json(it, a, s));
  }
  const auto& names = eval::attribute_names();
  std::printf("evaluated %zu images against %s\n", items->size(), o.spec.c_str());
  json summary = json::object();
  for (size_t k = 0; k < names.size(); ++k) {
    std::printf("  %-10s %5d/%-5d %6.1f%%\n", names[k].c_str(), tally.correct[k], tally.total[k], 100 * tally.accuracy(k));
    summary[names[k]] = {{"correct", tally.correct[k]}, {"total", tally.total[k]}, {"accuracy", tally.accuracy(k)}};
  }
  const int n = int(items->size());
  std::printf("  %-10s %5d/%-5d %6.1f%%  (images with every attribute right)\n", "all", all_correct, n,
              100.0 * all_correct / n);
  summary["all"] = {{"correct", all_correct}, {"total", n}, {"accuracy", double(all_correct) / n}};
  if (!o.json_out.empty()) {
    std::ofstream out(o.json_out);
    out << json{{"spec", o.spec}, {"prompts", o.prompts}, {"images_dir", o.images}, {"summary", summary},
                {"images", images}}.dump(1)
        << "\n";
    if (!out) {
      std::fprintf(stderr, "ditrun evaluate: cannot write %s\n", o.json_out.c_str());
      return kExitOutput;
    }
  }
  return kExitOk;
}

}  // namespace

Command add_evaluate_command(CLI::App& root) {
  auto opts = std::make_shared<EvaluateOptions>();
  CLI::App* cmd = root.add_subcommand(
      "evaluate", "Score images of the procedural shapes world against their prompts (colour, shape, size, position)");
  cmd->add_option("--prompts", opts->prompts,
                  "JSONL with {\"prompt\": ..., \"image\": \"name.png\"} per line, or plain prompt lines (images "
                  "0000.png, 0001.png, ...)")->required();
  cmd->add_option("--images", opts->images, "Folder holding the images")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--spec", opts->spec, "World spec (tools/world/spec.json)")->capture_default_str();
  cmd->add_option("--json", opts->json_out, "Write per-image details (detections, features, results) here");
  cmd->add_flag("--verbose,-v", opts->verbose, "One line per image: expected vs detected");
  return {cmd, [opts] { return run_evaluate(*opts); }};
}

}  // namespace app
