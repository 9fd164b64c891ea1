// `ditrun evaluate --prompts FILE --images DIR`: scores images of the procedural shapes world against
// their prompts with the deterministic evaluator in app/evaluate (no model involved), printing
// per-attribute accuracy; --verbose adds one line per image, --json writes per-image details.
// A prompt line may name a "video" (a folder of NNNN.png frames, app/evaluate/frames.h) instead of an
// "image": its prompt is then a video caption, scored by app/evaluate/video.h, which adds the motion row.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>

#include "app/commands/commands.h"
#include "app/commands/exit_codes.h"
#include "app/evaluate/frames.h"
#include "app/evaluate/score.h"
#include "app/evaluate/video.h"

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
  std::string prompt, image;  // image: the file, or for a video prompt the folder of frames
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
    bool video_key = false;
    char name[32];
    std::snprintf(name, sizeof name, "%04zu.png", items.size());
    it.image = name;
    if (line[line.find_first_not_of(" \t")] == '{') {
      try {
        const json j = json::parse(line);
        if (!j.contains("prompt") || !j["prompt"].is_string())
          return rt::Status::error(where + "expected a string \"prompt\" field, got " + line);
        it.prompt = j["prompt"].get<std::string>();
        if (j.contains("image") && j.contains("video"))
          return rt::Status::error(where + "both \"image\" and \"video\"; a line scores one of them");
        if (j.contains("image")) it.image = j["image"].get<std::string>();
        if (j.contains("video")) it.image = j["video"].get<std::string>(), video_key = true;
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
    if (it.expected.video && !video_key) {
      if (line[line.find_first_not_of(" \t")] == '{' && it.image != name)
        return rt::Status::error(where + "a video prompt with an \"image\"\n  hint: name its folder of frames with \"video\"");
      it.image = it.image.substr(0, 4);  // plain lines: videos 0000/, 0001/, ...
    }
    if (!it.expected.video && video_key)
      return rt::Status::error(where + "\"video\" with an image prompt (no motion phrase): \"" + it.prompt + "\"");
    items.push_back(std::move(it));
  }
  if (items.empty()) return rt::Status::error("prompts file " + path + ": no prompts in it");
  return items;
}

std::string describe(const eval::ExpectedObject& o) {
  return o.size + " " + o.color + " " + o.shape + (o.position.empty() ? "" : " " + o.position);
}

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

json image_json(const Item& it, const eval::Analysis& a, const eval::ImageScore& s,
               const eval::VideoAnalysis* v = nullptr) {
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
  if (v) {
    json motions = json::array();
    for (size_t k = 0; k < v->motions.size(); ++k) {
      const auto& m = v->motions[k];
      motions.push_back({{"label", m.label}, {"dx", m.dx}, {"dy", m.dy}, {"area_ratio", m.area_ratio},
                         {"rotation_deg", m.rotation_deg}, {"symmetry", m.symmetry}, {"frames_seen", m.frames_seen},
                         {"first_color", m.first_color}, {"last_color", m.last_color}, {"track", v->tracks[k].det}});
    }
    return {{"video", it.image}, {"prompt", it.prompt}, {"all_correct", all}, {"frames", v->frames.size()},
            {"detected", {{"background", a.background}, {"texture", a.texture}, {"objects", objs}, {"motions", motions}}},
            {"match", s.match}, {"results", results}};
  }
  return {{"image", it.image}, {"prompt", it.prompt}, {"all_correct", all},
          {"detected", {{"background", a.background}, {"texture", a.texture}, {"texture_share", a.texture_share},
                        {"background_rgb", {a.background_rgb[0], a.background_rgb[1], a.background_rgb[2]}},
                        {"objects", objs}}},
          {"match", s.match}, {"results", results}};
}

void print_verbose(const Item& it, const eval::Analysis& a, const eval::ImageScore& s,
                   const eval::VideoAnalysis* v = nullptr) {
  std::string wrong;
  for (const auto& r : s.results)
    if (!r.correct)
      wrong += " " + r.attribute + (r.object >= 0 ? "[" + std::to_string(r.object + 1) + "]" : "") + ":" + r.expected +
               "->" + r.detected;
  std::string exp = it.expected.background + " " + it.expected.texture, det = a.background + " " + a.texture;
  for (const auto& o : it.expected.objects)
    exp += "; " + describe(o) + (o.motion.empty() ? "" : " " + eval::expected_motion_label(o));
  for (size_t k = 0; k < a.objects.size(); ++k) {
    det += "; " + describe(a.objects[k]);
    if (v) {
      const auto& m = v->motions[k];
      char buf[128];
      std::snprintf(buf, sizeof buf, " %s (travel %+.2f,%+.2f area x%.2f turn %+.0f deg, %d frames)", m.label.c_str(),
                    m.dx, m.dy, m.area_ratio, m.rotation_deg, m.frames_seen);
      det += buf;
    }
  }
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
    if (it.expected.video) {
      auto src = eval::open_video(path);
      auto frames = src ? eval::read_all_frames(**src) : rt::Result<std::vector<cv::Mat>>(src.status());
      if (!frames) {
        std::fprintf(stderr, "ditrun evaluate: %s (prompt \"%s\")\n  hint: --images is the folder the prompts' "
                     "video folders are relative to\n", frames.status().message().c_str(), it.prompt.c_str());
        return kExitFailure;
      }
      const eval::VideoAnalysis v = eval::analyze_video(*frames, *spec);
      const eval::ImageScore s = eval::score_video(it.expected, v, *spec);
      tally.add(s);
      all_correct += std::all_of(s.results.begin(), s.results.end(), [](const auto& r) { return r.correct; });
      if (o.verbose) print_verbose(it, v.frames[0], s, &v);
      if (!o.json_out.empty()) images.push_back(image_json(it, v.frames[0], s, &v));
      continue;
    }
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
    if (tally.total[k] == 0) continue;  // motion without videos, position without images
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
                  "JSONL with {\"prompt\": ..., \"image\": \"name.png\"} per line (or {\"prompt\": <video caption>, "
                  "\"video\": \"folder of NNNN.png frames\"}), or plain prompt lines (images 0000.png, 0001.png, ...; "
                  "videos 0000/, 0001/, ...)")->required();
  cmd->add_option("--images", opts->images, "Folder holding the images (and video frame folders)")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--spec", opts->spec, "World spec (tools/world/spec.json)")->capture_default_str();
  cmd->add_option("--json", opts->json_out, "Write per-image details (detections, features, results) here");
  cmd->add_flag("--verbose,-v", opts->verbose, "One line per image: expected vs detected");
  return {cmd, [opts] { return run_evaluate(*opts); }};
}

}  // namespace app
