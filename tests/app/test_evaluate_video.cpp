// Video scoring in the shapes-world evaluator: the video caption grammar, frame folders, object tracks
// and motions on the world's ground-truth videos (tests/fixtures/world/videos, made by
// tools/world/make_video_samples.py: 12 clean 8-frame 128x128 videos covering every motion, 2 blurred and
// noisy variants), wrong-motion prompts, and `ditrun evaluate` with "video" prompt lines.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "app/evaluate/frames.h"
#include "app/evaluate/video.h"
#include "harness/safetensors_writer.h"
#include "harness/fixtures.h"
#include "harness/run.h"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;
using namespace app::eval;

static const std::string kVideos = std::string(DITRUN_FIXTURES_DIR) + "/world/videos";

struct VideoSample {
  std::string prompt, video, variant;
  std::vector<std::string> motions;
};

static std::vector<VideoSample> video_samples() {
  std::vector<VideoSample> out;
  std::ifstream in(kVideos + "/prompts.jsonl");
  REQUIRE(in);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    out.push_back({j["prompt"], j["video"], j.value("variant", "clean"), j["motions"].get<std::vector<std::string>>()});
  }
  REQUIRE(out.size() >= 14);
  return out;
}

static ExpectedScene vparse(const std::string& prompt) {
  auto r = parse_caption(prompt, test::world_spec());
  INFO(prompt << ": " << r.status().message());
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

static const VideoAnalysis& analysis_of(const std::string& video) {
  static std::map<std::string, VideoAnalysis> cache;
  if (auto it = cache.find(video); it != cache.end()) return it->second;
  auto src = open_video(kVideos + "/" + video);
  INFO(video << ": " << src.status().message());
  REQUIRE(src.is_ok());
  auto frames = read_all_frames(**src);
  REQUIRE(frames.is_ok());
  REQUIRE(frames->size() == 8);
  return cache[video] = analyze_video(*frames, test::world_spec());
}

TEST_CASE("evaluate video captions: every motion phrase of the grammar", "[evaluate]") {
  auto e = vparse("a small red circle moving to the right on a blue background");
  REQUIRE(e.objects.size() == 1);
  CHECK(e.video);
  CHECK(e.objects[0].motion == "move_right");
  CHECK(e.objects[0].size == "small");
  CHECK(e.objects[0].position.empty());
  CHECK(vparse("a large green square moving to the left on a white background").objects[0].motion == "move_left");
  CHECK(vparse("a medium black star moving up on a dotted gray background").objects[0].motion == "move_up");
  CHECK(vparse("a medium black star moving down on a gray background").objects[0].motion == "move_down");
  CHECK(vparse("a large purple square spinning on a white background").objects[0].motion == "spin");
  e = vparse("an orange triangle growing from small to large on a striped green background");
  CHECK(e.objects[0].motion == "grow");
  CHECK(e.objects[0].color == "orange");
  CHECK(e.objects[0].size == "small");
  CHECK(e.objects[0].end_size == "large");
  CHECK(e.texture == "striped");
  e = vparse("a white circle shrinking from large to small on a black background");
  CHECK(expected_motion_label(e.objects[0]) == "shrink to small");
  e = vparse("a small square changing from yellow to Grey on a black background.");
  CHECK(e.objects[0].motion == "recolor");
  CHECK(e.objects[0].color == "yellow");
  CHECK(e.objects[0].end_color == "gray");
  CHECK(expected_motion_label(e.objects[0]) == "recolor to gray");
  e = vparse("a large black star moving to the left and a small green triangle spinning on a gray background");
  REQUIRE(e.objects.size() == 2);
  CHECK(e.objects[1].motion == "spin");
  CHECK(e.objects[1].shape == "triangle");
  // Image captions are unchanged: no motion, a position.
  e = vparse("a small red circle at the top left on a blue background");
  CHECK(!e.video);
  CHECK(e.objects[0].motion.empty());
  CHECK(e.objects[0].position == "top left");
  // Every fixture prompt (world.py video_caption output) parses.
  for (const VideoSample& v : video_samples()) CHECK(vparse(v.prompt).objects.size() == v.motions.size());

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"a small red circle moving sideways on a blue background", "'sideways'"},
      {"a small red circle growing from small to large on a blue background", "'growing'"},
      {"a red circle growing from small to huge on a blue background", "'huge'"},
      {"a small circle changing from red to pink on a blue background", "'pink'"},
      {"a small red circle spinning and a small blue square at the top on a white background", "all with a motion"},
  };
  for (const auto& [prompt, word] : bad) {
    auto r = parse_caption(prompt, test::world_spec());
    INFO(prompt);
    REQUIRE(!r.is_ok());
    CHECK_THAT(r.status().message(), Catch::Contains(word) && Catch::Contains("expected"));
  }
}

TEST_CASE("evaluate video frames: a folder of PNGs in name order, errors name the folder", "[evaluate]") {
  auto src = open_video(kVideos + "/v00");
  REQUIRE(src.is_ok());
  CHECK((*src)->frame_count() == 8);
  CHECK((*src)->frame(0)->cols == 128);
  auto missing = open_video(kVideos + "/nonexistent");
  REQUIRE(!missing.is_ok());
  CHECK_THAT(missing.status().message(), Catch::Contains("nonexistent"));
  auto file = open_video(kVideos + "/prompts.jsonl");
  REQUIRE(!file.is_ok());
  CHECK_THAT(file.status().message(), Catch::Contains("not a folder of PNG frames"));
  const std::string dir = test::make_temp_dir("eval_video_one");
  fs::copy_file(kVideos + "/v00/0000.png", dir + "/0000.png");
  auto one = open_video(dir);
  REQUIRE(!one.is_ok());
  CHECK_THAT(one.status().message(), Catch::Contains("at least 2"));
}

// Clean and blurred+noisy videos: every attribute right, motion included.
TEST_CASE("evaluate video: the evaluator scores the ground-truth videos 100%, clean and noisy", "[evaluate]") {
  for (const std::string variant : {"clean", "blur_noise"}) {
    Tally tally;
    int videos = 0;
    for (const VideoSample& v : video_samples()) {
      if (v.variant != variant) continue;
      ++videos;
      const VideoAnalysis& a = analysis_of(v.video);
      const ImageScore s = score_video(vparse(v.prompt), a, test::world_spec());
      for (const AttributeResult& r : s.results) {
        INFO(variant << " " << v.video << " \"" << v.prompt << "\": " << r.attribute << " expected " << r.expected
                     << ", detected " << r.detected);
        CHECK(r.correct);
      }
      tally.add(s);
    }
    const auto& names = attribute_names();
    const size_t motion = size_t(std::find(names.begin(), names.end(), "motion") - names.begin());
    const size_t position = size_t(std::find(names.begin(), names.end(), "position") - names.begin());
    INFO(variant << ": motion " << tally.correct[motion] << "/" << tally.total[motion]);
    CHECK(videos >= (variant == std::string("clean") ? 12 : 2));
    CHECK(tally.total[motion] >= videos);
    CHECK(tally.accuracy(motion) == 1.0);
    CHECK(tally.total[position] == 0);  // video prompts have no position
  }
}

TEST_CASE("evaluate video: motions are measured, not guessed: travel, growth, turn, colours", "[evaluate]") {
  for (const VideoSample& v : video_samples()) {
    if (v.variant != "clean" || v.motions.size() != 1) continue;
    const VideoAnalysis& a = analysis_of(v.video);
    REQUIRE(!a.motions.empty());
    const MotionMeasure& m = a.motions[0];
    INFO(v.video << " " << v.prompt << ": " << m.label << " dx " << m.dx << " dy " << m.dy << " area x" << m.area_ratio
                 << " turn " << m.rotation_deg);
    CHECK(m.frames_seen == 8);
    const std::string& k = v.motions[0];
    if (k == "move_right") CHECK(m.dx > 0.25);
    if (k == "move_left") CHECK(m.dx < -0.25);
    if (k == "move_down") CHECK(m.dy > 0.25);
    if (k == "move_up") CHECK(m.dy < -0.25);
    if (k == "grow") CHECK(m.area_ratio > 4);
    if (k == "shrink") CHECK(m.area_ratio < 0.25);
    if (k == "spin") CHECK(std::abs(std::abs(m.rotation_deg) - 90) < 15);
    if (k != "spin") CHECK(std::abs(m.rotation_deg) < 15);
    if (k == "recolor") CHECK(m.first_color != m.last_color);
  }
}

// A prompt with the wrong motion (opposite direction, another motion, another end state) is scored wrong
// on motion and right on everything else.
TEST_CASE("evaluate video: a wrong-motion prompt is scored wrong on motion only", "[evaluate]") {
  const std::vector<std::pair<std::string, std::string>> swaps = {
      {"moving to the right", "moving to the left"}, {"moving to the left", "moving to the right"},
      {"moving up", "moving down"}, {"moving down", "moving up"},
      {"growing from small to large", "shrinking from small to large"},
      {"shrinking from large to small", "shrinking from large to medium"},
  };
  int checked = 0;
  for (const VideoSample& v : video_samples()) {
    if (v.motions.size() != 1) continue;
    for (const auto& [from, to] : swaps) {
      const size_t at = v.prompt.find(from);
      if (at == std::string::npos) continue;
      const std::string wrong = v.prompt.substr(0, at) + to + v.prompt.substr(at + from.size());
      const ImageScore s = score_video(vparse(wrong), analysis_of(v.video), test::world_spec());
      for (const AttributeResult& r : s.results) {
        INFO(v.video << " \"" << wrong << "\": " << r.attribute << " expected " << r.expected << ", detected " << r.detected);
        CHECK(r.correct == (r.attribute != "motion"));
      }
      ++checked;
    }
  }
  CHECK(checked >= 7);  // four directions (one noisy) and both sizes of change
  // A spinning object is not "still"-compatible with a move, and a recolor end colour must match.
  const ImageScore spin = score_video(vparse("a large purple square moving up on a white background"), analysis_of("v06"), test::world_spec());
  CHECK(!spin.results.back().correct);
  const ImageScore rec = score_video(vparse("a small square changing from yellow to white on a black background"),
                                     analysis_of("v08"), test::world_spec());
  CHECK(rec.results.back().expected == "recolor to white");
  CHECK(!rec.results.back().correct);
}

TEST_CASE("ditrun evaluate CLI: video prompt lines add the motion row", "[evaluate][cli]") {
  const std::string dir = test::make_temp_dir("eval_video_cli");
  auto r = test::run_ditrun("evaluate --prompts " + test::q(kVideos + "/prompts.jsonl") + " --images " + test::q(kVideos) +
                            " --json " + test::q(dir + "/out.json") + " --verbose");
  INFO(r.out);
  REQUIRE(r.rc == 0);
  CHECK_THAT(r.out, Catch::Contains("motion") && Catch::Contains("v00 ok") && !Catch::Contains("WRONG"));
  CHECK_THAT(r.out, !Catch::Contains("position"));  // video prompts have no position: no 0/0 row
  std::ifstream jf(dir + "/out.json");
  const auto j = nlohmann::json::parse(jf);
  CHECK(j["summary"]["motion"]["accuracy"] == 1.0);
  CHECK(j["summary"]["motion"]["total"].get<int>() >= 14);
  CHECK(j["images"][0]["detected"]["motions"][0]["label"] == "move_right");

  // A wrong direction shows up in the motion row; the image-only report has no motion row.
  const std::string prompt = video_samples()[0].prompt;  // v00: moving to the right
  std::ofstream(dir + "/wrong.jsonl") << nlohmann::json{{"prompt", prompt}, {"video", "v00"}}.dump() << "\n"
                                      << nlohmann::json{{"prompt", "a small purple circle moving to the left on a green background"},
                                                        {"video", "v00"}}.dump() << "\n";
  r = test::run_ditrun("evaluate --prompts " + test::q(dir + "/wrong.jsonl") + " --images " + test::q(kVideos) + " -v");
  CHECK(r.rc == 0);
  CHECK_THAT(r.out, Catch::Contains("motion[1]:move_left->move_right") && Catch::Contains("50.0%"));

  std::ofstream(dir + "/mixed.jsonl") << nlohmann::json{{"prompt", prompt}, {"image", "x.png"}}.dump() << "\n";
  r = test::run_ditrun("evaluate --prompts " + test::q(dir + "/mixed.jsonl") + " --images " + test::q(kVideos));
  CHECK(r.rc == 3);
  CHECK_THAT(r.out, Catch::Contains("\"video\""));
  r = test::run_ditrun("evaluate --prompts " + test::q(dir + "/wrong.jsonl") + " --images " + test::q(dir));
  CHECK(r.rc == 1);
  CHECK_THAT(r.out, Catch::Contains("v00"));
}
