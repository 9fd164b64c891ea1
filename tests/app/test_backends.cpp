// `ditrun backends` on the embedded model (2 double + 4 single blocks, 4 heads x 64, 24 text tokens): at
// 256² (a 16x16 grid) an 8x8 window visits most tiles, so every layer falls back to dense; at 512² (32x32)
// it runs; per-layer methods from a config file get their own rows.
#include <filesystem>
#include <fstream>
#include <string>

#include "harness/run.h"
#include "harness/safetensors_writer.h"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;

static const std::string kGna = "gna:window=1x8x8,stride=1x4x4,dilation=1x1x1,causal=0x0x0";

static bool has(const std::string& text, const std::string& part) {
  INFO("looking for: " << part);
  return text.find(part) != std::string::npos;
}

// stdout of a `ditrun backends` run that must succeed.
static std::string backends(const std::string& args) {
  const test::RunResult r = test::run_ditrun("backends " + args);
  INFO(r.out);
  REQUIRE(r.rc == 0);
  return r.stdout_text;
}

TEST_CASE("backends.gna_tiny_grid_falls_back", "[attention]") {
  const std::string o = backends("--model default -W 256 -H 256 --attention gna:window=1x8x8,stride=1x4x4");
  CHECK(has(o, "256x256: 16x16 token grid + 24 text tokens = 280 tokens, 4 heads x 64, cpu f32"));
  CHECK(has(o, "0-1      double 0-1   0.791  0.373  dense     " + kGna + " -> dense: cpu_reference\n"));
  CHECK(has(o, "2-5      single 0-3   0.791  0.373  dense     " + kGna + " -> dense: cpu_reference\n"));
  CHECK(has(o, "fallback: " + kGna + " runs dense: tile density 0.79 >= 0.50"));
}

TEST_CASE("backends.gna_larger_grid_runs", "[attention]") {
  const std::string o = backends("-W 512 -H 512 --attention gna:window=1x8x8,stride=1x4x4 --dense-steps 2");
  CHECK(has(o, "steps 0-1: every layer dense (warm-up); from step 2:"));
  CHECK(has(o, "0-1      double 0-1   0.284  0.105  -         " + kGna + ": cpu block-sparse (tile density 0.284)\n"));
  CHECK(has(o, "2-5      single 0-3   0.284  0.105  -         " + kGna + ": cpu block-sparse"));
  CHECK(!has(o, "fallback:"));
}

TEST_CASE("backends.config_per_layer", "[attention]") {
  const std::string dir = test::make_temp_dir("backends_config");
  const std::string cfg = dir + "/a.json";
  std::ofstream(cfg) << R"({"method": "gna:window=1x8x8,stride=1x4x4", "dense_layers": [0],
                           "layers": {"3": "grat:variant=B,group=1x8x8,radius=1"}})";
  const std::string o = backends("-W 512 -H 512 --attention-config " + test::q(cfg));
  CHECK(has(o, "0        double 0     1.000  1.000  -         dense: cpu_reference\n"));
  CHECK(!has(o, "1-2 "));  // a range does not cross from double to single blocks
  CHECK(has(o, "1        double 1     0.284  0.105  -         " + kGna));
  CHECK(has(o, "2        single 0     0.284  0.105  -         " + kGna));
  CHECK(has(o, "3        single 1     0.493  0.418  -         grat:variant=B,group=1x8x8,radius=1: cpu block-sparse"));
  CHECK(has(o, "4-5      single 2-3   0.284  0.105  -         " + kGna));
  // Layers the model does not have, and --attention with a config file.
  std::ofstream(cfg) << R"({"dense_layers": [6]})";
  test::RunResult r = test::run_ditrun("backends --attention-config " + test::q(cfg));
  CHECK(r.rc == 2);
  CHECK(has(r.stderr_text, cfg + ": dense layer 6 is out of range; the model has 6 layers (0..5)"));
  r = test::run_ditrun("backends --attention dense --attention-config " + test::q(cfg));
  CHECK(r.rc == 2);
  fs::remove_all(dir);
}

// On a machine without a GPU (or a build without CUDA) --device cuda is refused with the reason; on a GPU
// the block-sparse kernel runs the 512² layout and the 256² fallback takes a dense GPU kernel.
TEST_CASE("backends.device_cuda", "[attention]") {
  const test::RunResult r =
      test::run_ditrun("backends -W 512 -H 512 --attention gna:window=1x8x8,stride=1x4x4 --device cuda");
  INFO(r.out);
  if (r.rc != 0) {
    CHECK(r.rc == 2);
    CHECK(has(r.stderr_text, "ditrun backends: --device cuda: "));
    return;
  }
  CHECK(has(r.stdout_text, "cuda:0 bf16"));
  // The kernel is named: the warp-specialized wgmma one on Hopper, else sm80 mma.sync with the reason wgmma
  // was passed over.
  CHECK((has(r.stdout_text, kGna + ": block_sparse sm90ws warp-specialized wgmma (tile density 0.284)") ||
         has(r.stdout_text, kGna + ": block_sparse sm80 mma.sync (wgmma passed over: ")));
  const test::RunResult small =
      test::run_ditrun("backends -W 256 -H 256 --attention gna:window=1x8x8,stride=1x4x4 --device cuda");
  INFO(small.out);
  CHECK(small.rc == 0);
  CHECK(has(small.stdout_text, kGna + " -> dense: "));
}

TEST_CASE("backends.paro_rows_per_layer", "[attention]") {
  // A PARO plan's layouts differ per layer and timestep bucket: one row per layer, for the bucket of the
  // first sparse step.
  const fs::path dir = fs::temp_directory_path() / "ditrun_backends_paro";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string plan = (dir / "p.paro").string();
  const test::RunResult cal = test::run_ditrun("calibrate -q -W 256 -H 256 --steps 2 -p " + test::q("a red circle") +
                                               " -o " + test::q(plan));
  INFO(cal.out);
  REQUIRE(cal.rc == 0);
  const std::string o = backends("-W 256 -H 256 --dense-steps 3 --attention paro:plan=" + test::q(plan));
  CHECK(has(o, "paro: the layouts of step 3 of 20 (timestep bucket 2)\n"));
  for (const char* row : {"\n0        double 0 ", "\n1        double 1 ", "\n2        single 0 ", "\n5        single 3 "})
    CHECK(has(o, row));
  fs::remove_all(dir);
}
