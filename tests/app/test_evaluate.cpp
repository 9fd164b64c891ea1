// The shapes-world evaluator: caption grammar, image analysis on the world's ground-truth renders
// (tests/fixtures/world/samples, made by tools/world/make_samples.py), scoring, and `ditrun evaluate`.
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "app/evaluate/score.h"
#include "harness/fixtures.h"
#include "harness/run.h"
#include "harness/safetensors_writer.h"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;
using namespace app::eval;

static const std::string kSamples = std::string(DITRUN_FIXTURES_DIR) + "/world/samples";

struct Sample {
  std::string prompt, image, variant;
};

static std::vector<Sample> samples() {
  std::vector<Sample> out;
  std::ifstream in(kSamples + "/prompts.jsonl");
  REQUIRE(in);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    out.push_back({j["prompt"], j["image"], j.value("variant", "clean")});
  }
  REQUIRE(out.size() >= 40);
  return out;
}

static ExpectedScene parse(const std::string& prompt) {
  auto r = parse_caption(prompt, test::world_spec());
  INFO(prompt << ": " << r.status().message());
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

static cv::Mat load(const std::string& name) {
  auto r = load_rgb(kSamples + "/" + name);
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

TEST_CASE("world spec loads and its errors name the file and the key", "[evaluate]") {
  const WorldSpec& s = test::world_spec();
  CHECK(s.colors.size() == 10);
  CHECK(s.shapes.size() == 6);
  CHECK(s.positions.size() == 9);
  CHECK(s.size_of_diameter(0.15) == "small");
  CHECK(s.size_of_diameter(0.26) == "medium");
  CHECK(s.size_of_diameter(0.38) == "large");

  auto missing = load_world_spec("/nonexistent/spec.json");
  REQUIRE(!missing.is_ok());
  CHECK_THAT(missing.status().message(), Catch::Contains("/nonexistent/spec.json") && Catch::Contains("--spec"));

  const std::string dir = test::make_temp_dir("eval_spec");
  std::ofstream(dir + "/bad.json") << "{\"colors\": {\"red\": [1, 2, 3]}}";
  auto bad = load_world_spec(dir + "/bad.json");
  REQUIRE(!bad.is_ok());
  CHECK_THAT(bad.status().message(), Catch::Contains("shapes"));
  std::ofstream(dir + "/broken.json") << "{\"colors\": ";
  CHECK_THAT(load_world_spec(dir + "/broken.json").status().message(), Catch::Contains("not valid JSON"));
}

TEST_CASE("caption parsing covers every word of the grammar", "[evaluate]") {
  const WorldSpec& s = test::world_spec();
  for (const NamedColor& c : s.colors)
    for (const ShapeSpec& sh : s.shapes)
      for (const SizeSpec& z : s.sizes) {
        const auto e = parse("a " + z.name + " " + c.name + " " + sh.name + " in the center on a blue background");
        REQUIRE(e.objects.size() == 1);
        CHECK(e.objects[0].color == c.name);
        CHECK(e.objects[0].shape == sh.name);
        CHECK(e.objects[0].size == z.name);
      }
  for (const PositionSpec& p : s.positions) {
    const auto e = parse("a small red circle " + p.phrase + " on a white background");
    CHECK(e.objects[0].position == p.name);
  }
  for (const auto& [texture, word] : s.texture_words) {
    const auto e = parse("a small red circle at the top on a " + (word.empty() ? "" : word + " ") + "gray background");
    CHECK(e.texture == texture);
    CHECK(e.background == "gray");
  }
  const auto two = parse("a medium yellow star at the bottom and a small blue ring at the top right on a dotted black background");
  REQUIRE(two.objects.size() == 2);
  CHECK(two.objects[0].shape == "star");
  CHECK(two.objects[0].position == "bottom");
  CHECK(two.objects[1].color == "blue");
  CHECK(two.objects[1].position == "top right");
  CHECK(two.texture == "dotted");
  CHECK(two.background == "black");
  // Case, spacing, a final period and colour aliases are tolerated, as in world.py's parse_caption.
  const auto loose = parse("  A Large GREY cross  at the top   left on a striped white background.");
  CHECK(loose.objects[0].color == "gray");
  CHECK(loose.objects[0].position == "top left");
  CHECK(loose.texture == "striped");
}

TEST_CASE("caption parsing names the word it does not know", "[evaluate]") {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"a small pink circle at the top on a blue background", "'pink'"},
      {"a huge red circle at the top on a blue background", "'huge'"},
      {"a small red hexagon at the top on a blue background", "'hexagon'"},
      {"a small red circle somewhere on a blue background", "'somewhere'"},
      {"a small red circle at the top on a wavy blue background", "'wavy'"},
      {"a small red circle at the top on a blue sky", "'sky'"},
      {"a small red circle moving sideways on a blue background", "'sideways'"},
      {"a small red circle at the top", "end of the prompt"},
      {"a small red circle at the top on a blue background please", "'please'"},
  };
  for (const auto& [prompt, word] : bad) {
    auto r = parse_caption(prompt, test::world_spec());
    INFO(prompt);
    REQUIRE(!r.is_ok());
    CHECK_THAT(r.status().message(), Catch::Contains(word) && Catch::Contains("expected"));
  }
}

// Every attribute right on every clean render (256 and 512 px, one and two objects, all textures),
// and on the world's own blurred+noisy variants.
TEST_CASE("evaluator scores the ground-truth renders 100%", "[evaluate]") {
  Tally tally;
  for (const Sample& smp : samples()) {
    const Analysis a = analyze_image(load(smp.image), test::world_spec());
    const ImageScore s = score_image(parse(smp.prompt), a, test::world_spec());
    for (const AttributeResult& r : s.results) {
      INFO(smp.image << " (" << smp.variant << ") " << smp.prompt << ": " << r.attribute << " expected " << r.expected
                     << ", detected " << r.detected);
      CHECK(r.correct);
    }
    tally.add(s);
  }
  for (size_t k = 0; k < attribute_names().size(); ++k) CHECK((tally.total[k] > 0) == (attribute_names()[k] != "motion"));
}

// Variants made here from the clean renders, deterministic (fixed RNG seed): Gaussian blur, Gaussian
// noise, both, and a JPEG round trip, the degradations a generated image shows.
static std::vector<cv::Mat> degrade(const cv::Mat& rgb, uint64_t seed) {
  std::vector<cv::Mat> out;
  cv::Mat blur, noisy, both, jpeg;
  cv::GaussianBlur(rgb, blur, {0, 0}, 1.5);
  cv::RNG rng(seed);
  auto add_noise = [&](const cv::Mat& in, double sd) {
    cv::Mat n(in.size(), CV_32FC3), f;
    rng.fill(n, cv::RNG::NORMAL, 0, sd);
    in.convertTo(f, CV_32FC3);
    cv::Mat r;
    cv::Mat(f + n).convertTo(r, CV_8UC3);  // saturating
    return r;
  };
  out.push_back(blur);
  out.push_back(add_noise(rgb, 10));
  out.push_back(add_noise(blur, 6));
  std::vector<uchar> buf;
  cv::imencode(".jpg", rgb, buf, {cv::IMWRITE_JPEG_QUALITY, 75});
  out.push_back(cv::imdecode(buf, cv::IMREAD_COLOR));  // channel order is irrelevant for a round trip
  return out;
}

TEST_CASE("evaluator is at least 95% right on blurred noisy and JPEG variants", "[evaluate]") {
  Tally tally;
  uint64_t seed = 1;
  for (const Sample& smp : samples()) {
    if (smp.variant != "clean") continue;
    const ExpectedScene e = parse(smp.prompt);
    for (const cv::Mat& v : degrade(load(smp.image), seed++)) {
      const ImageScore s = score_image(e, analyze_image(v, test::world_spec()), test::world_spec());
      for (const AttributeResult& r : s.results)
        if (!r.correct) WARN(smp.image << ": " << r.attribute << " expected " << r.expected << ", detected " << r.detected);
      tally.add(s);
    }
  }
  for (size_t k = 0; k < attribute_names().size(); ++k) {
    if (attribute_names()[k] == "motion") continue;  // images have none (tests/app/test_evaluate_video.cpp)
    INFO(attribute_names()[k] << ": " << tally.correct[k] << "/" << tally.total[k]);
    CHECK(tally.accuracy(k) >= 0.95);
  }
}

// A prompt that disagrees with the image on one attribute is scored wrong on exactly that attribute.
TEST_CASE("a wrong prompt is scored wrong on that attribute", "[evaluate]") {
  const WorldSpec& s = test::world_spec();
  int checked = 0;
  for (const Sample& smp : samples()) {
    if (smp.variant != "clean") continue;
    const ExpectedScene truth = parse(smp.prompt);
    if (truth.objects.size() != 1) continue;
    const Analysis a = analyze_image(load(smp.image), s);
    auto next = [](const auto& list, const std::string& cur, auto name) {
      for (size_t i = 0; i < list.size(); ++i)
        if (name(list[i]) == cur) return name(list[(i + 1) % list.size()]);
      return std::string("?");
    };
    for (const std::string attr : {"color", "shape", "position", "size", "background"}) {
      ExpectedScene wrong = truth;
      ExpectedObject& o = wrong.objects[0];
      if (attr == "color") o.color = next(s.colors, o.color, [](const NamedColor& c) { return c.name; });
      if (attr == "shape") o.shape = next(s.shapes, o.shape, [](const ShapeSpec& x) { return x.name; });
      if (attr == "size") o.size = next(s.sizes, o.size, [](const SizeSpec& x) { return x.name; });
      if (attr == "position") o.position = next(s.positions, o.position, [](const PositionSpec& x) { return x.name; });
      if (attr == "background") wrong.background = next(s.colors, wrong.background, [](const NamedColor& c) { return c.name; });
      for (const AttributeResult& r : score_image(wrong, a, s).results) {
        INFO(smp.image << " with a wrong " << attr << ": " << r.attribute << " expected " << r.expected << ", detected "
                       << r.detected);
        CHECK(r.correct == (r.attribute != attr));
      }
    }
    ++checked;
  }
  CHECK(checked >= 30);
}

TEST_CASE("two-object prompts match objects by attributes and not by order", "[evaluate]") {
  for (const Sample& smp : samples()) {
    const ExpectedScene e = parse(smp.prompt);
    if (e.objects.size() != 2 || smp.variant != "clean") continue;
    ExpectedScene swapped = e;
    std::swap(swapped.objects[0], swapped.objects[1]);
    const ImageScore s = score_image(swapped, analyze_image(load(smp.image), test::world_spec()), test::world_spec());
    for (const AttributeResult& r : s.results) {
      INFO(smp.image << ": " << r.attribute);
      CHECK(r.correct);
    }
    CHECK(s.match[0] != s.match[1]);
  }
}

TEST_CASE("ditrun evaluate CLI: summary and --json and plain prompts and exit codes", "[evaluate][cli]") {
  const std::string dir = test::make_temp_dir("eval_cli");
  const std::string prompts = kSamples + "/prompts.jsonl";
  auto r = test::run_ditrun("evaluate --prompts " + test::q(prompts) + " --images " + test::q(kSamples) + " --json " +
                            test::q(dir + "/out.json") + " --verbose");
  INFO(r.out);
  REQUIRE(r.rc == 0);
  CHECK_THAT(r.out, Catch::Contains("color") && Catch::Contains("100.0%") && Catch::Contains("000.png ok"));
  CHECK_THAT(r.out, !Catch::Contains("WRONG"));
  std::ifstream jf(dir + "/out.json");
  const auto j = nlohmann::json::parse(jf);
  CHECK(j["summary"]["shape"]["accuracy"] == 1.0);
  CHECK(j["images"].size() == samples().size());
  CHECK(j["images"][0]["detected"]["objects"][0].contains("features"));

  // Plain prompt lines: images are 0000.png, 0001.png, ... in order.
  std::ofstream(dir + "/prompts.txt") << samples()[0].prompt << "\n" << samples()[1].prompt << "\n";
  fs::copy_file(kSamples + "/" + samples()[0].image, dir + "/0000.png");
  fs::copy_file(kSamples + "/" + samples()[1].image, dir + "/0001.png");
  r = test::run_ditrun("evaluate --prompts " + test::q(dir + "/prompts.txt") + " --images " + test::q(dir));
  CHECK(r.rc == 0);
  CHECK_THAT(r.out, Catch::Contains("evaluated 2 images"));

  std::ofstream(dir + "/bad.txt") << "a small red blob at the top on a blue background\n";
  r = test::run_ditrun("evaluate --prompts " + test::q(dir + "/bad.txt") + " --images " + test::q(dir));
  CHECK(r.rc == 3);
  CHECK_THAT(r.out, Catch::Contains("'blob'") && Catch::Contains("bad.txt:1"));

  r = test::run_ditrun("evaluate --prompts " + test::q(prompts) + " --images " + test::q(dir) + " --spec /nonexistent.json");
  CHECK(r.rc == 3);
  CHECK_THAT(r.out, Catch::Contains("/nonexistent.json"));

  std::ofstream(dir + "/three.txt") << samples()[0].prompt << "\n" << samples()[1].prompt << "\n" << samples()[2].prompt << "\n";
  r = test::run_ditrun("evaluate --prompts " + test::q(dir + "/three.txt") + " --images " + test::q(dir));
  CHECK(r.rc == 1);
  CHECK_THAT(r.out, Catch::Contains("0002.png"));

  CHECK(test::run_ditrun("evaluate --images " + test::q(dir)).rc == 2);
}
