// `ditrun calibrate` (PARO) on the embedded model at 256² (a 16x16 token grid after 24 text tokens), then
// `generate --attention paro:plan=FILE`: the plan validates, its density is near the request, the image is
// close to full attention's, and bad plans / other sizes are clear errors with a non-zero exit.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "app/commands/compare_metrics.h"
#include "app/io/png_writer.h"
#include "harness/run.h"
#include "harness/safetensors_writer.h"
#include "sparse_attention/methods/paro.h"

#include <catch2/catch.hpp>

namespace {

// Measured 18.65 dB (CPU build, density 0.3, 4 steps, no dense steps; the 256² grid has only 2x4 image
// tiles, so each query tile keeps one key tile); 15 dB leaves about 3.5 dB for other BLAS builds.
constexpr double kParoPsnrBound = 15.0;

std::vector<uint8_t> read_rgb(const std::string& path) {
  int w = 0, h = 0;
  auto px = app::read_png_rgb8(path, &w, &h);
  INFO(path << ": " << px.status().message());
  REQUIRE(px);
  return std::move(px.value());
}

double psnr(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  REQUIRE(a.size() == b.size());
  double se = 0;
  for (size_t i = 0; i < a.size(); ++i) se += (double(a[i]) - double(b[i])) * (double(a[i]) - double(b[i]));
  const double mse = se / double(a.size());
  return mse == 0 ? INFINITY : 10.0 * std::log10(255.0 * 255.0 / mse);
}

}  // namespace

TEST_CASE("calibrate.plan_then_generate", "[calibrate]") {
  const std::string dir = test::make_temp_dir("calibrate");
  const std::string plan = dir + "/plan.paro";
  const std::string cal = "calibrate -q -W 256 -H 256 --steps 4 --density 0.3 -p " +
                          test::q("a large red circle at the left on a blue background") + " -p " +
                          test::q("a small green square at the top on a white background") + " -o " + test::q(plan);
  const test::RunResult rc = test::run_ditrun(cal);
  INFO(rc.out);
  REQUIRE(rc.rc == 0);
  // A second run refuses to overwrite.
  const test::RunResult again = test::run_ditrun(cal);
  CHECK(again.rc == 4);
  CHECK(again.out.find("--overwrite") != std::string::npos);

  auto loaded = sattn::read_paro_plan(plan);
  INFO((loaded ? "" : loaded.status().message()));
  REQUIRE(loaded);
  const sattn::ParoPlan& p = *loaded;
  CHECK(p.layers == 6);
  CHECK(p.heads == 4);
  CHECK(p.head_dim == 64);
  CHECK(p.tokens.grid[1] == 16);
  CHECK(p.tokens.grid[2] == 16);
  CHECK(p.buckets == 10);
  std::printf("calibrate: image-tile density %.3f for --density 0.3\n", p.image_density());
  CHECK(std::abs(p.image_density() - 0.3) <= 0.05);
  sattn::MaskRule rule;
  rule.tokens = p.tokens;
  double tile = 0;
  for (int b = 0; b < p.buckets; ++b)
    for (int64_t l = 0; l < p.layers; ++l) {
      const sattn::BlockLayout layout = sattn::plan_paro(p, b, l, rule);
      REQUIRE(sattn::validate(layout) == "");
      tile += layout.tile_density();
    }
  // compare's realized density of the plan: the mean over its layouts (text tiles always visited, so above
  // the plan's image-only density), not the dense 1.0 of a method without a rule.
  auto spec = sattn::parse_method("paro:plan=" + plan);
  REQUIRE(spec);
  const app::compare::Densities d = app::compare::densities(*spec, 256, 256, 24);
  CHECK(d.tile == Approx(tile / double(p.buckets * p.layers)));
  CHECK(d.tile < 1.0);
  CHECK(d.tile > p.image_density());

  const std::string gen = "generate -q -p " + test::q("a large red circle at the left on a blue background") +
                          " -W 256 -H 256 --steps 4 --seed 3 -o ";
  const std::string dense = dir + "/dense.png", paro = dir + "/paro.png";
  const test::RunResult rd = test::run_ditrun(gen + test::q(dense));
  INFO(rd.out);
  REQUIRE(rd.rc == 0);
  const test::RunResult rp =
      test::run_ditrun(gen + test::q(paro) + " --attention paro:plan=" + test::q(plan) + " --no-attention-fallback");
  INFO(rp.out);
  REQUIRE(rp.rc == 0);
  const std::vector<uint8_t> a = read_rgb(dense), b = read_rgb(paro);
  const double db = psnr(a, b);
  std::printf("calibrate: paro (density 0.3) vs full attention, 256x256, 4 steps: PSNR %.2f dB\n", db);
  CHECK(a != b);  // the plan ran
  CHECK(db >= kParoPsnrBound);
}

TEST_CASE("calibrate.bad_plan_and_other_size_are_errors", "[calibrate]") {
  const std::string dir = test::make_temp_dir("calibrate_bad");
  const std::string gen = "generate -q -p " + test::q("a red circle") + " --steps 2 -o " + test::q(dir + "/x.png");
  const test::RunResult missing = test::run_ditrun(gen + " --attention paro:plan=" + test::q(dir + "/none.paro"));
  CHECK(missing.rc == 2);
  CHECK(missing.out.find("cannot open") != std::string::npos);
  // A plan for 256² used at 128².
  const std::string plan = dir + "/p.paro";
  const test::RunResult rc = test::run_ditrun("calibrate -q -W 256 -H 256 --steps 2 -p " + test::q("a red circle") +
                                              " -o " + test::q(plan));
  INFO(rc.out);
  REQUIRE(rc.rc == 0);
  const test::RunResult other =
      test::run_ditrun(gen + " -W 128 -H 128 --attention paro:plan=" + test::q(plan));
  INFO(other.out);
  CHECK(other.rc == 2);
  CHECK(other.out.find("plan calibrated for a 16x16 grid, this run has 8x8: run ditrun calibrate at this size") !=
        std::string::npos);
}
