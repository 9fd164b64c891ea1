// Flow-matching schedule parity (diffusers FlowMatchEulerDiscreteScheduler as FluxPipeline sets it
// up) and the Euler / true-CFG arithmetic.
#include <cmath>

#include "app/parity/fixture.h"
#include "dit/sampling/flow_match.h"
#include "harness/compare.h"
#include "harness/fixtures.h"

#include <catch2/catch.hpp>

namespace fm = dit::sampling;

TEST_CASE("flow_match_schedule fixtures match diffusers", "[flow_match]") {
  const auto files = test::parity_fixtures("flow_match_schedule");
  REQUIRE(!files.empty());
  rt::Context ctx;
  for (const auto& path : files) {
    INFO(path);
    const app::ParityFixture f = test::load_fixture(path);
    auto out = (*app::find_parity_runner("flow_match_schedule"))(ctx, f);
    REQUIRE(out.is_ok());
    for (const auto& [name, want] : f.expected) {
      INFO(name);
      const test::Diff d = test::compare(out->at(name), want);
      INFO(d.str());
      CHECK(d.rel_l2 <= f.tolerance);
      CHECK(d.max_abs <= 1e-6 * (name == "timesteps" ? 1000 : 1));  // float32 steps replicated exactly
    }
  }
}

TEST_CASE("flux schedule facts", "[flow_match]") {
  CHECK(fm::calculate_shift(256) == Approx(0.5));
  CHECK(fm::calculate_shift(4096) == Approx(1.15));
  const fm::Schedule dev = fm::flux_schedule(4, 4096, fm::SchedulerConfig::flux_dev());
  REQUIRE(dev.sigmas.size() == 5);
  REQUIRE(dev.timesteps.size() == 4);
  CHECK(dev.sigmas[0] == 1.f);
  CHECK(dev.sigmas[4] == 0.f);
  const double e = std::exp(1.15);
  CHECK(dev.sigmas[2] == Approx(e / (e + 1.0)).epsilon(1e-6));  // sigma 0.5 shifted
  CHECK(dev.timesteps[1] == Approx(dev.sigmas[1] * 1000.0));
  const fm::Schedule schnell = fm::flux_schedule(4, 4096, fm::SchedulerConfig::flux_schnell());
  CHECK(schnell.sigmas[1] == 0.75f);
  CHECK(schnell.sigmas[3] == 0.25f);

  fm::SchedulerConfig inv = fm::SchedulerConfig::flux_schnell();
  inv.invert_sigmas = true;
  const fm::Schedule s = fm::flux_schedule(2, 256, inv);
  CHECK(s.sigmas == std::vector<float>{0.f, 0.5f, 1.f});
}

TEST_CASE("scheduler config from json", "[flow_match]") {
  auto c = fm::SchedulerConfig::from_json(nlohmann::json::parse(
      R"({"use_dynamic_shifting": true, "shift": 3.0, "base_shift": 0.5, "max_shift": 1.15, "shift_terminal": null})"));
  REQUIRE(c.is_ok());
  CHECK(c->use_dynamic_shifting);
  CHECK(!c->shift_terminal.has_value());
  auto karras = fm::SchedulerConfig::from_json(nlohmann::json::parse(R"({"use_karras_sigmas": true})"));
  REQUIRE(!karras.is_ok());
  CHECK_THAT(karras.status().message(), Catch::Contains("use_karras_sigmas"));
}

TEST_CASE("euler step and true cfg", "[flow_match]") {
  rt::Context ctx;
  const rt::Tensor x = rt::Tensor::from_vector({1.f, 2.f}, {2});
  const rt::Tensor v = rt::Tensor::from_vector({4.f, -8.f}, {2});
  const rt::Tensor y = fm::euler_step(ctx, x, v, 1.f, 0.75f);
  CHECK(y.to_vector() == std::vector<float>{0.f, 4.f});
  const rt::Tensor neg = rt::Tensor::from_vector({1.f, 1.f}, {2});
  CHECK(fm::true_cfg(ctx, v, neg, 2.f).to_vector() == std::vector<float>{7.f, -17.f});
}
