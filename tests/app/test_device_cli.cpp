// --device / --dtype handling and `ditrun bench` on a machine without a GPU (CI): clear messages, usage
// exit codes, no output file; bench's CPU path runs a one-block model.
#include <filesystem>

#include "harness/png_compare.h"
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

// Tiled decoding on the embedded model (256x256): a tile as large as the image is the whole decode;
// 128 px tiles (3x3 tiles, 32 px blends) stay close to it. Measured when written: 128 px tiles gave
// PSNR 33.3 dB, mean |diff| 3.6 levels, max 54 at a seam; 192 px tiles 41.0 dB.
TEST_CASE("vae tiling decodes in blended tiles", "[cli]") {
  const fs::path dir = fs::temp_directory_path() / "ditrun_vae_tile";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string base = "generate -q -W 256 -H 256 --prompt 'a large red circle at the left on a blue background' -o ";
  auto out = [&](const char* name) { return (dir / name).string(); };
  REQUIRE(test::run_ditrun(base + test::q(out("whole.png"))).rc == 0);
  REQUIRE(test::run_ditrun(base + test::q(out("t256.png")) + " --vae-tile 256").rc == 0);
  REQUIRE(test::run_ditrun(base + test::q(out("t128.png")) + " --vae-tile 128").rc == 0);
  const test::PngDiff same = test::compare_png(out("t256.png"), out("whole.png"));
  REQUIRE(same.ok);
  CHECK(same.worst == 0);
  const test::PngDiff tiled = test::compare_png(out("t128.png"), out("whole.png"));
  REQUIRE(tiled.ok);
  CHECK(tiled.width == 256);
  CHECK(tiled.mean_abs < 6.0);  // 3.6 measured; a misplaced or unblended tile gives tens of levels
  CHECK(tiled.worst < 120);
  const auto bad = test::run_ditrun(base + test::q(out("bad.png")) + " --vae-tile 100");
  CHECK(bad.rc == 2);
  CHECK(bad.stderr_text.find("--vae-tile 100") != std::string::npos);
  fs::remove_all(dir);
}
