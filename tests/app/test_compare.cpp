// `ditrun compare` (issue 5): full attention and sparse methods from one loaded pipeline, one seed, with
// PSNR/SSIM/densities in report.json. On the CPU with the embedded model (models/ditrun-shapes) at 256²,
// a 16x16 token grid, and 4 steps to keep it fast.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/io/png_writer.h"
#include "harness/run.h"
#include "harness/safetensors_writer.h"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;

static const std::string kCommon =
    "compare -q -p 'a large red circle at the left on a blue background' -W 256 -H 256 --steps 4 --seed 3 ";

static std::vector<uint8_t> read_rgb(const std::string& path) {
  int w = 0, h = 0;
  auto px = app::read_png_rgb8(path, &w, &h);
  INFO(path << ": " << px.status().message());
  REQUIRE(px);
  return std::move(px.value());
}

static nlohmann::json read_report(const std::string& dir) {
  std::ifstream in(dir + "/report.json");
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

TEST_CASE("compare.full_and_gna", "[compare]") {
  const std::string dir = test::make_temp_dir("compare") + "/out";  // --out-dir is created
  const test::RunResult r =
      test::run_ditrun(kCommon + "--attention full,gna:window=1x8x8,stride=1x4x4 --out-dir " + test::q(dir));
  INFO(r.out);
  REQUIRE(r.rc == 0);
  const std::string gna = "gna_window_1x8x8_stride_1x4x4";
  for (const std::string& f : std::vector<std::string>{"full.png", gna + ".png", "side_by_side.png", "report.json"}) CHECK(fs::exists(dir + "/" + f));
  int w = 0, h = 0;
  REQUIRE(app::read_png_rgb8(dir + "/side_by_side.png", &w, &h));
  CHECK(w == 512);
  CHECK(h == 256);
  const nlohmann::json rep = read_report(dir);
  CHECK(rep["seed"] == 3);
  CHECK(rep["width"] == 256);
  CHECK(rep["steps"] == 4);
  REQUIRE(rep["methods"].size() == 2);
  const auto& full = rep["methods"][0];
  const auto& m = rep["methods"][1];
  CHECK(full["name"] == "full");
  CHECK(full["psnr"].is_null());  // identical to itself: infinite PSNR is written as null
  CHECK(full["tile_density"] == 1.0);
  CHECK(m["name"] == gna);
  CHECK(m["spec"].get<std::string>().rfind("gna:window=1x8x8,stride=1x4x4", 0) == 0);
  REQUIRE(m["psnr"].is_number());
  CHECK(m["psnr"].get<double>() > 10.0);
  CHECK(std::isfinite(m["psnr"].get<double>()));
  for (const char* d : {"tile_density", "flop_density"}) {
    INFO(d);
    CHECK(m[d].get<double>() > 0.0);
    CHECK(m[d].get<double>() < 1.0);
  }
  CHECK(m["tile_density"].get<double>() >= m["flop_density"].get<double>());
  CHECK(m["seconds"].get<double>() > 0.0);
#if DITRUN_WITH_OPENCV
  REQUIRE(m["ssim"].is_number());
  CHECK(m["ssim"].get<double>() > 0.0);
  CHECK(m["ssim"].get<double>() < 1.0);
  CHECK(full["ssim"].get<double>() == Approx(1.0));
  CHECK(m["evaluator"].is_array());
  CHECK(!m["evaluator"].empty());
#else
  CHECK(m["ssim"].is_null());
  CHECK(r.stdout_text.find("n/a (built without OpenCV)") != std::string::npos);
#endif
  CHECK(r.stdout_text.find(gna) != std::string::npos);  // the table
  fs::remove_all(fs::path(dir).parent_path());
}

TEST_CASE("compare.full_twice_is_identical", "[compare]") {
  const std::string dir = test::make_temp_dir("compare_twice");
  const test::RunResult r = test::run_ditrun(kCommon + "--attention full,full --out-dir " + test::q(dir));
  INFO(r.out);
  REQUIRE(r.rc == 0);
  CHECK(read_rgb(dir + "/full.png") == read_rgb(dir + "/full_2.png"));
  const nlohmann::json rep = read_report(dir);
  REQUIRE(rep["methods"].size() == 2);
  CHECK(rep["methods"][1]["psnr"].is_null());
  fs::remove_all(dir);
}

TEST_CASE("compare.bad_method_is_usage_error", "[compare]") {
  const std::string dir = test::make_temp_dir("compare_bad");
  const test::RunResult r = test::run_ditrun(kCommon + "--attention full,gna:windw=1x8x8 --out-dir " + test::q(dir));
  INFO(r.out);
  CHECK(r.rc == 2);
  CHECK(r.stderr_text.find("--attention") != std::string::npos);
  CHECK(!fs::exists(dir + "/full.png"));
  // A window larger than the 16x16 grid is caught too (after the model's defaults are known).
  const test::RunResult big = test::run_ditrun(kCommon + "--attention gna:window=1x32x32 --out-dir " + test::q(dir));
  INFO(big.out);
  CHECK(big.rc == 2);
  CHECK(big.stderr_text.find("--attention") != std::string::npos);
  fs::remove_all(dir);
}

// --dense-layers reaches every sparse method: with all six layers of the embedded model dense, GNA's image is
// full attention's, bit for bit; the layers are in the report; a layer the model lacks is a usage error.
TEST_CASE("compare.dense_layers", "[compare]") {
  const std::string dir = test::make_temp_dir("compare_layers");
  const std::string gna = "gna:window=1x8x8,stride=1x4x4";
  const test::RunResult r =
      test::run_ditrun(kCommon + "--attention " + gna + " --dense-layers 0,1,2,3,4,5 --out-dir " + test::q(dir));
  INFO(r.out);
  REQUIRE(r.rc == 0);
  CHECK(read_rgb(dir + "/full.png") == read_rgb(dir + "/gna_window_1x8x8_stride_1x4x4.png"));
  const nlohmann::json rep = read_report(dir);
  CHECK(rep["dense_layers"] == nlohmann::json::array({0, 1, 2, 3, 4, 5}));
  CHECK(rep["methods"][1]["psnr"].is_null());
  // One dense layer is not all of them: the image differs.
  const test::RunResult one =
      test::run_ditrun(kCommon + "--attention " + gna + " --dense-layers 0 --overwrite --out-dir " + test::q(dir));
  INFO(one.out);
  REQUIRE(one.rc == 0);
  CHECK(read_rgb(dir + "/full.png") != read_rgb(dir + "/gna_window_1x8x8_stride_1x4x4.png"));
  const test::RunResult bad =
      test::run_ditrun(kCommon + "--attention " + gna + " --dense-layers 6 --overwrite --out-dir " + test::q(dir));
  INFO(bad.out);
  CHECK(bad.rc == 2);
  CHECK(bad.stderr_text.find("--dense-layers: dense layer 6 is out of range; the model has 6 layers") != std::string::npos);
  fs::remove_all(dir);
}

// config:FILE entries: an attention config file per entry. All six layers dense through the file's
// dense_layers gives full attention's image and a step density of 1; a per-layer method shows in the spec and
// makes the step density the mean over layers; a file without a sparse method and a layer the model lacks
// are usage errors naming the file.
TEST_CASE("compare.config_entries", "[compare]") {
  const std::string dir = test::make_temp_dir("compare_config");
  const std::string all_dense = dir + "/all_dense.json", mixed = dir + "/mixed.json", empty = dir + "/empty.json",
                    bad_layer = dir + "/bad_layer.json";
  { std::ofstream(all_dense) << R"({"method": "gna:window=1x8x8,stride=1x4x4", "dense_layers": [0, 1, 2, 3, 4, 5]})"; }
  { std::ofstream(mixed) << R"({"method": "gna:window=1x8x8,stride=1x4x4", "layers": {"2": "grat:variant=X,group=1x4x4"}})"; }
  { std::ofstream(empty) << R"({"dense_steps": 2})"; }
  { std::ofstream(bad_layer) << R"({"method": "gna:window=1x8x8", "layers": {"6": "grat:variant=B,group=1x4x4"}})"; }
  const std::string out = dir + "/out";
  const test::RunResult r = test::run_ditrun(kCommon + "--attention gna:window=1x8x8,stride=1x4x4,config:" + all_dense +
                                             ",config:" + mixed + " --out-dir " + test::q(out));
  INFO(r.out);
  REQUIRE(r.rc == 0);
  CHECK(read_rgb(out + "/full.png") == read_rgb(out + "/config_all_dense.png"));
  CHECK(read_rgb(out + "/full.png") != read_rgb(out + "/config_mixed.png"));
  const nlohmann::json rep = read_report(out);
  REQUIRE(rep["methods"].size() == 4);
  const auto &gna = rep["methods"][1], &dense = rep["methods"][2], &mix = rep["methods"][3];
  CHECK(rep["methods"][0]["step_flop_density"] == 1.0);
  CHECK(dense["name"] == "config_all_dense");
  CHECK(dense["step_flop_density"].get<double>() == Approx(1.0));
  CHECK(mix["name"] == "config_mixed");
  CHECK(mix["spec"].get<std::string>().find("layer 2 grat:variant=X,group=1x4x4") != std::string::npos);
  // No dense layers: a plain method's step density is its own FLOP density; the mixed entry's is the mean of
  // five GNA layers and one GRAT-X layer.
  const double g = gna["flop_density"].get<double>();
  CHECK(gna["step_flop_density"].get<double>() == Approx(g));
  const double x = mix["step_flop_density"].get<double>() * 6 - 5 * g;  // GRAT-X's own density
  CHECK(x > 0.0);
  CHECK(x < 1.0);
  CHECK(x != Approx(g));
  for (const auto& [file, what] : std::vector<std::pair<std::string, std::string>>{
           {empty, "names no sparse method"}, {bad_layer, "layer 6"}}) {
    const test::RunResult bad =
        test::run_ditrun(kCommon + "--attention config:" + file + " --overwrite --out-dir " + test::q(out));
    INFO(bad.out);
    CHECK(bad.rc == 2);
    CHECK(bad.stderr_text.find(file) != std::string::npos);
    CHECK(bad.stderr_text.find(what) != std::string::npos);
  }
  fs::remove_all(dir);
}

TEST_CASE("compare.existing_output_needs_overwrite", "[compare]") {
  const std::string dir = test::make_temp_dir("compare_exists");
  const std::string report = dir + "/report.json";
  { std::ofstream(report) << "keep me\n"; }
  const test::RunResult r = test::run_ditrun(kCommon + "--attention full --out-dir " + test::q(dir));
  INFO(r.out);
  CHECK(r.rc != 0);
  std::ifstream in(report);
  std::string line;
  std::getline(in, line);
  CHECK(line == "keep me");
  CHECK(!fs::exists(dir + "/full.png"));
  fs::remove_all(dir);
}

// --prompts: a JSON line with seed and image name, a plain line; --limit cuts the file.
TEST_CASE("compare.prompts_file_summary", "[compare]") {
  const std::string dir = test::make_temp_dir("compare_prompts");
  const std::string prompts = dir + "/prompts.jsonl";
  {
    std::ofstream f(prompts);
    f << R"({"prompt": "a small green square at the top on a white background", "seed": 7, "image": "0007.png"})" << "\n\n"
      << "a large red circle at the left on a blue background\n"
      << "a medium blue star at the right on a yellow background\n";
  }
  const std::string out = dir + "/out";
  const test::RunResult r = test::run_ditrun(
      "compare -q -W 256 -H 256 --steps 4 --seed 3 --prompts " + test::q(prompts) +
      " --limit 2 --attention gna:window=1x8x8,stride=1x4x4 --out-dir " + test::q(out));
  INFO(r.out);
  REQUIRE(r.rc == 0);
  const std::string gna = "gna_window_1x8x8_stride_1x4x4";
  for (const std::string& m : {std::string("full"), gna}) {
    CHECK(fs::exists(out + "/" + m + "/0007.png"));
    CHECK(fs::exists(out + "/" + m + "/0003.png"));  // line 3 of the file (line 2 is blank)
    CHECK(!fs::exists(out + "/" + m + "/0004.png"));  // --limit 2
  }
  CHECK(!fs::exists(out + "/side_by_side.png"));
  const nlohmann::json rep = read_report(out);
  CHECK(rep["prompts"] == 2);
  REQUIRE(rep["items"].size() == 2);
  CHECK(rep["items"][0]["seed"] == 7);
  CHECK(rep["items"][1]["seed"] == 3);  // --seed for lines without one
  REQUIRE(rep["summary"].size() == 2);
  const auto& full = rep["summary"][0];
  const auto& m = rep["summary"][1];
  CHECK(full["name"] == "full");
  CHECK(full["psnr_mean"].is_null());
  CHECK(m["name"] == gna);
  REQUIRE(m["psnr_mean"].is_number());
  CHECK(m["psnr_mean"].get<double>() > 10.0);
  CHECK(m["psnr_min"].get<double>() <= m["psnr_mean"].get<double>());
  CHECK(m["tile_density"].get<double>() < 1.0);
  CHECK(m["attention_ms"].get<double>() > 0.0);
  CHECK(m["seconds_median"].get<double>() > 0.0);
  // The items' per-method PSNR averages to the summary's.
  const double a = rep["items"][0]["methods"][1]["psnr"].get<double>(), b = rep["items"][1]["methods"][1]["psnr"].get<double>();
  CHECK(m["psnr_mean"].get<double>() == Approx((a + b) / 2));
#if DITRUN_WITH_OPENCV
  REQUIRE(full["evaluator_accuracy"].is_number());
  CHECK(full["evaluator_vs_full"].get<double>() == Approx(0.0));
  CHECK(m["evaluator_attributes"].contains("shape"));
#endif
  // Scoring the PNGs again (as after a GPU run) gives the same PSNR, and no timings.
  const test::RunResult again = test::run_ditrun("compare -q -W 256 -H 256 --prompts " + test::q(prompts) +
                                                 " --limit 2 --attention gna:window=1x8x8,stride=1x4x4 --score-existing "
                                                 "--overwrite --out-dir " + test::q(out));
  INFO(again.out);
  REQUIRE(again.rc == 0);
  const nlohmann::json rescored = read_report(out);
  CHECK(rescored["summary"][1]["psnr_mean"].get<double>() == Approx(m["psnr_mean"].get<double>()).epsilon(1e-12));
  CHECK(rescored["summary"][1]["attention_ms"].is_null());
  fs::remove(out + "/full/0007.png");
  const test::RunResult missing = test::run_ditrun("compare -q --prompts " + test::q(prompts) + " --limit 2 --attention full "
                                                   "--score-existing --overwrite --out-dir " + test::q(out));
  CHECK(missing.rc != 0);
  CHECK(missing.stderr_text.find("0007.png is missing") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("compare.prompts_file_errors", "[compare]") {
  const std::string dir = test::make_temp_dir("compare_prompts_bad");
  const std::string prompts = dir + "/prompts.jsonl";
  { std::ofstream(prompts) << "a red circle\n{\"promt\": \"typo\"}\n"; }
  const test::RunResult bad = test::run_ditrun("compare -q --steps 2 --prompts " + test::q(prompts) +
                                               " --attention full --out-dir " + test::q(dir + "/o"));
  INFO(bad.out);
  CHECK(bad.rc == 2);
  CHECK(bad.stderr_text.find("line 2") != std::string::npos);
  const test::RunResult none = test::run_ditrun("compare -q --steps 2 --attention full --out-dir " + test::q(dir + "/o"));
  INFO(none.out);
  CHECK(none.rc == 2);
  CHECK(none.stderr_text.find("--prompts") != std::string::npos);
  const test::RunResult both = test::run_ditrun("compare -q --steps 2 -p 'a red circle' --prompts " + test::q(prompts) +
                                                " --attention full --out-dir " + test::q(dir + "/o"));
  CHECK(both.rc == 2);
  fs::remove_all(dir);
}
