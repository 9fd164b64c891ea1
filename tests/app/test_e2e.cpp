// End-to-end: `ditrun generate` on the tiny random FluxPipeline saved by tools/make_fixtures.py must
// reproduce diffusers' PNGs (issue contract: mean |diff| <= 0.5 of a level, >= 99% of values within
// 2 levels), and be deterministic (same seed, byte-identical file).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "app/io/png_writer.h"
#include "harness/png_compare.h"
#include "harness/run.h"
#include "harness/safetensors_writer.h"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;

static const std::string kE2E = std::string(DITRUN_FIXTURES_DIR) + "/e2e";

static std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

static std::string generate_args(const nlohmann::json& c, const std::string& out) {
  std::ostringstream os;
  os << "generate -q --model " << test::q(kE2E + "/tiny-flux") << " --prompt " << test::q(c["prompt"].get<std::string>())
     << " --width " << c["width"] << " --height " << c["height"] << " --steps " << c["steps"] << " --guidance "
     << c["guidance"] << " --seed " << c["seed"] << " --max-sequence-length " << c["max_sequence_length"]
     << " --out " << test::q(out);
  return os.str();
}

TEST_CASE("generate reproduces diffusers' FluxPipeline images", "[e2e]") {
  const auto cases = nlohmann::json::parse(read_bytes(kE2E + "/cases.json"))["cases"];
  REQUIRE(cases.size() >= 3);
  const std::string dir = test::make_temp_dir("e2e");
  for (const auto& c : cases) {
    const std::string name = c["name"];
    SECTION(name) {
      const std::string out = dir + "/" + name + ".png";
      const auto r = test::run_ditrun(generate_args(c, out));
      INFO(r.out);
      REQUIRE(r.rc == 0);
      test::check_png_matches(out, kE2E + "/" + c["expected_png"].get<std::string>(), c["width"].get<int>(),
                              c["height"].get<int>());

      auto text = app::read_png_text(out);
      REQUIRE(text.is_ok());
      bool has_params = false;
      for (auto& [k, v] : *text)
        if (k == "parameters") has_params = v.find("seed: " + std::to_string(c["seed"].get<int>())) != std::string::npos;
      CHECK(has_params);
    }
  }
  fs::remove_all(dir);
}

TEST_CASE("generate is deterministic: same seed, byte-identical PNG", "[e2e]") {
  const auto c = nlohmann::json::parse(read_bytes(kE2E + "/cases.json"))["cases"][0];
  const std::string dir = test::make_temp_dir("determinism");
  REQUIRE(test::run_ditrun(generate_args(c, dir + "/a.png")).rc == 0);
  REQUIRE(test::run_ditrun(generate_args(c, dir + "/b.png")).rc == 0);
  CHECK(read_bytes(dir + "/a.png") == read_bytes(dir + "/b.png"));
  nlohmann::json other = c;
  other["seed"] = c["seed"].get<int>() + 1;
  REQUIRE(test::run_ditrun(generate_args(other, dir + "/c.png")).rc == 0);
  CHECK(read_bytes(dir + "/a.png") != read_bytes(dir + "/c.png"));
  fs::remove_all(dir);
}
