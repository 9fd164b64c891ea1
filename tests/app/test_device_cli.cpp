// --device / --dtype handling and `ditrun bench` on a machine without a GPU (CI): clear messages, usage
// exit codes, no output file; bench's CPU path runs a one-block model.
#include <filesystem>

#include "harness/run.h"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;

static const std::string kTiny = std::string(DITRUN_FIXTURES_DIR) + "/e2e/tiny-flux";

TEST_CASE("device flags are checked with a clear message", "[cli]") {
  const std::string out = (fs::temp_directory_path() / "ditrun_device_cli.png").string();
  fs::remove(out);
  const std::string base = "generate -q --model " + test::q(kTiny) + " --prompt 'a red circle' -W 64 -H 64 --steps 1 -o " + test::q(out);
  {
    const auto r = test::run_ditrun(base + " --device tpu");
    CHECK(r.rc == 2);
    CHECK(r.stderr_text.find("--device tpu is not a device; use cpu, cuda or cuda:N") != std::string::npos);
  }
  {
    const auto r = test::run_ditrun(base + " --dtype bf16");
    CHECK(r.rc == 2);
    CHECK(r.stderr_text.find("not available on the CPU") != std::string::npos);
  }
  {
    const auto r = test::run_ditrun(base + " --device cuda:x");
    CHECK(r.rc == 2);
    CHECK(r.stderr_text.find("cuda:N") != std::string::npos);
  }
  if (!fs::exists("/dev/nvidia0")) {  // CI: either no CUDA backend or no device; both say so
    const auto r = test::run_ditrun(base + " --device cuda");
    INFO(r.out);
    CHECK(r.rc == 2);
    CHECK(r.stderr_text.find("CUDA") != std::string::npos);
  }
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("bench builds a random model and times it", "[cli]") {
  const auto r = test::run_ditrun(
      "bench --random-weights --model flux-schnell --depth 1 --depth-single 1 -W 32 -H 32 --text-len 8 --runs 1 --warmup 0 "
      "--parts dit,attention,gemm");
  INFO(r.out);
  REQUIRE(r.rc == 0);
  for (const char* part : {"dit step", "attention/step", "linear/step"}) CHECK(r.stdout_text.find(part) != std::string::npos);
  const auto no_flag = test::run_ditrun("bench --model flux-dev");
  CHECK(no_flag.rc == 2);
  CHECK(no_flag.stderr_text.find("--random-weights") != std::string::npos);
  const auto bad_model = test::run_ditrun("bench --random-weights --model flux-pro");
  CHECK(bad_model.rc == 2);
}
