// The embedded default model (models/ditrun-shapes, used when `ditrun generate` gets no --model):
// it must reproduce diffusers' FluxPipeline images (tests/fixtures/e2e/embedded, made by
// tools/make_embedded_e2e.py; same contract as test_e2e.cpp), the README's first command must work, and
// for a few fixed (prompt, seed) pairs the images must follow the prompt as scored by `ditrun evaluate`.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "harness/png_compare.h"
#include "harness/run.h"
#include "harness/safetensors_writer.h"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;

static const std::string kEmbedded = std::string(DITRUN_FIXTURES_DIR) + "/e2e/embedded";

static std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `ditrun evaluate` on (prompt, image name) pairs in `dir`; returns the per-image details of its --json.
static nlohmann::json evaluate(const std::string& dir, const std::vector<std::pair<std::string, std::string>>& items) {
  const std::string prompts = dir + "/prompts.jsonl", json = dir + "/eval.json";
  {
    std::ofstream f(prompts);
    for (auto& [prompt, image] : items) f << nlohmann::json{{"prompt", prompt}, {"image", image}}.dump() << "\n";
  }
  const auto r = test::run_ditrun("evaluate --verbose --prompts " + test::q(prompts) + " --images " + test::q(dir) +
                                  " --json " + test::q(json));
  INFO(r.out);
  REQUIRE(r.rc == 0);
  const auto doc = nlohmann::json::parse(read_text(json));
  REQUIRE(doc["images"].size() == items.size());
  return doc["images"];
}

static std::map<std::string, bool> correct_by_attribute(const nlohmann::json& image) {
  std::map<std::string, bool> m;
  for (const auto& r : image["results"]) m[r["attribute"].get<std::string>()] = r["correct"].get<bool>();
  return m;
}

TEST_CASE("embedded model reproduces diffusers", "[e2e][embedded]") {
  const auto cases = nlohmann::json::parse(read_text(kEmbedded + "/cases.json"))["cases"];
  REQUIRE(cases.size() >= 4);
  const std::string dir = test::make_temp_dir("embedded_e2e");
  for (const auto& c : cases) {
    const std::string name = c["name"];
    SECTION(name) {
      const std::string out = dir + "/" + name + ".png";
      // no --model, no --steps/--guidance/--max-sequence-length: the embedded model's defaults
      std::ostringstream args;
      args << "generate -q --prompt " << test::q(c["prompt"].get<std::string>()) << " --seed " << c["seed"]
           << " --width " << c["width"] << " --height " << c["height"] << " --out " << test::q(out);
      const auto r = test::run_ditrun(args.str());
      INFO(r.out);
      REQUIRE(r.rc == 0);
      test::check_png_matches(out, kEmbedded + "/" + c["expected_png"].get<std::string>(), c["width"].get<int>(),
                              c["height"].get<int>());
    }
  }
  fs::remove_all(dir);
}

TEST_CASE("README first command works and follows the prompt", "[embedded]") {
  const std::string dir = test::make_temp_dir("embedded_readme");
  const std::string prompt = "a large red circle at the left on a blue background";
  const std::string out = dir + "/circle.png";
  const auto r = test::run_ditrun("generate --prompt " + test::q(prompt) + " --out " + test::q(out));
  INFO("stdout: " << r.stdout_text << "\nstderr: " << r.stderr_text);
  REQUIRE(r.rc == 0);
  CHECK(r.stdout_text.find(out) != std::string::npos);
  REQUIRE(fs::exists(out));
  const auto images = evaluate(dir, {{prompt, "circle.png"}});
  auto ok = correct_by_attribute(images[0]);
  INFO(images[0]["results"].dump());
  // Default seed 42: background, count, color and position are right. Shape and size are not asserted: on
  // the 200 held-out prompts the model gets them right 28% and 70% of the time (docs/quality.md; circles
  // come out as irregular blobs that read as squares), and this image has a medium-sized blob.
  for (const char* a : {"background", "texture", "count", "color", "position"}) {
    INFO(a);
    CHECK(ok[a]);
  }
  fs::remove_all(dir);
}

TEST_CASE("embedded model follows the prompt for fixed seeds", "[embedded]") {
  // (prompt, seed) pairs of the held-out set that the embedded model gets fully right (three of the 42 of 200
  // in docs/quality.md, one per shape it draws best): a regression check of the model and the CPU path
  const std::vector<std::pair<std::string, int>> fixed = {
      {"a medium purple square at the left on a green background", 1013},
      {"a large yellow cross at the left on a blue background", 1101},
      {"a large green triangle in the center on a white background", 1122},
  };
  const std::string dir = test::make_temp_dir("embedded_fixed");
  std::vector<std::pair<std::string, std::string>> items;
  for (size_t i = 0; i < fixed.size(); ++i) {
    const std::string image = std::to_string(i) + ".png";
    const auto r = test::run_ditrun("generate -q --prompt " + test::q(fixed[i].first) + " --seed " +
                                    std::to_string(fixed[i].second) + " --out " + test::q(dir + "/" + image));
    INFO(r.out);
    REQUIRE(r.rc == 0);
    items.emplace_back(fixed[i].first, image);
  }
  const auto images = evaluate(dir, items);
  for (size_t i = 0; i < fixed.size(); ++i) {
    INFO(fixed[i].first << " (seed " << fixed[i].second << "): " << images[i]["results"].dump());
    auto ok = correct_by_attribute(images[i]);
    for (const char* a : {"background", "texture", "count", "color", "shape", "size", "position"}) {
      INFO(a);
      CHECK(ok[a]);
    }
    CHECK(images[i]["all_correct"].get<bool>());
  }
  fs::remove_all(dir);
}

TEST_CASE("a prompt outside the shapes world gets a note, and still generates", "[embedded]") {
  const std::string dir = test::make_temp_dir("embedded_note");
  const std::string out = dir + "/cat.png";
  auto r = test::run_ditrun("generate --steps 2 --prompt 'a cat on a sofa' --out " + test::q(out));
  INFO(r.out);
  CHECK(r.rc == 0);
  CHECK(fs::exists(out));
  CHECK(r.stderr_text.find("only draws the shapes world") != std::string::npos);
  CHECK(r.stderr_text.find("'cat'") != std::string::npos);
  // A prompt of the world's grammar gets no note; --quiet silences it.
  r = test::run_ditrun("generate --steps 2 --prompt 'a small red circle at the top on a blue background' --out " +
                       test::q(dir + "/ok.png"));
  CHECK(r.rc == 0);
  CHECK(r.stderr_text.find("note:") == std::string::npos);
  r = test::run_ditrun("generate -q --steps 2 --prompt 'a cat' --out " + test::q(dir + "/q.png"));
  CHECK(r.rc == 0);
  CHECK(r.stderr_text.empty());
  fs::remove_all(dir);
}
