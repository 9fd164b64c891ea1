// The `attention` parity module: every committed fixture (made by tools/make_attention_fixtures.py from an
// explicit mask written in Python) through its runner, and malformed configs rejected with a message.
#include "app/parity/fixture.h"
#include "harness/fixtures.h"
#include "harness/gpu.h"

#include <catch2/catch.hpp>

TEST_CASE("attention_parity.committed fixtures", "[sparse][parity]") {
  REQUIRE(test::parity_fixtures("attention").size() >= 10);
  test::check_parity_fixtures("attention");
}

TEST_CASE("attention_parity.malformed configs say what is wrong", "[sparse][parity]") {
  const auto files = test::parity_fixtures("attention");
  REQUIRE(!files.empty());
  app::ParityFixture f = test::load_fixture(files.front());  // dense_plain_b2: grid 1x5x6
  const app::ParityRunner& run = *app::find_parity_runner("attention");
  auto error_with = [&](const char* key, const nlohmann::json& value) {
    app::ParityFixture g = f;
    g.config[key] = value;
    auto r = run(test::cpu_context(), g);
    REQUIRE(!r.is_ok());
    return r.status().message();
  };
  CHECK_THAT(error_with("method", "sla"), Catch::Contains("method must be"));
  CHECK_THAT(error_with("grid", nlohmann::json::array({2, 5, 6})), Catch::Contains("hold 60 tokens but q has 30"));
  CHECK_THAT(error_with("text_position", "middle"), Catch::Contains("text_position"));
  app::ParityFixture g = f;
  g.config["method"] = "gna";
  g.config["params"] = {{"window", {1, 7, 3}}};
  auto r = run(test::cpu_context(), g);
  REQUIRE(!r.is_ok());
  CHECK_THAT(r.status().message(), Catch::Contains("larger than the grid's H axis of 5"));
}
