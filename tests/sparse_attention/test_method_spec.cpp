// parse_method / method_str: the spellings of the issue, defaults, 2-D forms, and the error messages.
#include "sparse_attention/methods/method_spec.h"

#include <catch2/catch.hpp>

using sattn::MaskMethod;

namespace {

std::string error_of(std::string_view text) {
  auto r = sattn::parse_method(text);
  REQUIRE(!r.is_ok());
  return r.status().message();
}

}  // namespace

TEST_CASE("method_spec.dense and full", "[sparse]") {
  for (const char* s : {"dense", "full"}) {
    auto r = sattn::parse_method(s);
    REQUIRE(r.is_ok());
    CHECK(r.value().is_dense());
    CHECK(sattn::method_str(r.value()) == "dense");
  }
}

TEST_CASE("method_spec.gna full and 2-D forms", "[sparse]") {
  auto r = sattn::parse_method("gna:window=1x24x24,stride=1x8x8,dilation=1x1x1,causal=0x0x0");
  REQUIRE(r.is_ok());
  const sattn::MaskRule& g = r.value().rule;
  CHECK(g.method == MaskMethod::Neighborhood);
  CHECK((g.window[0] == 1 && g.window[1] == 24 && g.window[2] == 24));
  CHECK((g.stride[0] == 1 && g.stride[1] == 8 && g.stride[2] == 8));
  auto two = sattn::parse_method("gna:window=24x16,stride=8x8,dilation=2x1,causal=1x0");
  REQUIRE(two.is_ok());
  CHECK(sattn::method_str(two.value()) == "gna:window=1x24x16,stride=1x8x8,dilation=1x2x1,causal=0x1x0");
  auto minimal = sattn::parse_method("gna:window=18x24x24");
  REQUIRE(minimal.is_ok());
  CHECK(sattn::method_str(minimal.value()) == "gna:window=18x24x24,stride=1x1x1,dilation=1x1x1,causal=0x0x0");
  // The canonical spelling parses back to itself.
  CHECK(sattn::method_str(sattn::parse_method(sattn::method_str(two.value())).value()) == sattn::method_str(two.value()));
}

TEST_CASE("method_spec.grat defaults and variants", "[sparse]") {
  auto b = sattn::parse_method("grat");
  REQUIRE(b.is_ok());
  CHECK(sattn::method_str(b.value()) == "grat:variant=B,group=1x16x16,radius=1");
  auto x = sattn::parse_method("grat:variant=X,group=4x8x8");
  REQUIRE(x.is_ok());
  CHECK(x.value().rule.criss_cross);
  CHECK(sattn::method_str(x.value()) == "grat:variant=X,group=4x8x8,radius=1");
  auto r = sattn::parse_method("grat:variant=B,group=8x8,radius=2");
  REQUIRE(r.is_ok());
  CHECK(sattn::method_str(r.value()) == "grat:variant=B,group=1x8x8,radius=2");
}

TEST_CASE("method_spec.errors say what is wrong", "[sparse]") {
  CHECK_THAT(error_of("sla"), Catch::Contains("unknown method 'sla'"));
  CHECK_THAT(error_of("dense:x=1"), Catch::Contains("no parameters"));
  CHECK_THAT(error_of("gna:stride=1x8x8"), Catch::Contains("needs window"));
  CHECK_THAT(error_of("gna:window=24x24,size=3"), Catch::Contains("unknown gna key 'size'"));
  CHECK_THAT(error_of("gna:window=24xa"), Catch::Contains("'a' is not an integer >= 1"));
  CHECK_THAT(error_of("gna:window=0x24"), Catch::Contains("'0' is not an integer >= 1"));
  CHECK_THAT(error_of("gna:window=1x2x3x4"), Catch::Contains("more than 3 axes"));
  CHECK_THAT(error_of("gna:window=8x8,stride=16x8"), Catch::Contains("exceeds window"));
  CHECK_THAT(error_of("gna:window=8x8,causal=2x0"), Catch::Contains("0 or 1"));
  CHECK_THAT(error_of("gna:window=8x8,window=4x4"), Catch::Contains("given twice"));
  CHECK_THAT(error_of("gna:window"), Catch::Contains("not key=value"));
  CHECK_THAT(error_of("grat:variant=Y"), Catch::Contains("expected B"));
  CHECK_THAT(error_of("grat:radius=1x2"), Catch::Contains("one number"));
  CHECK_THAT(error_of("grat:radius=-1"), Catch::Contains("integer >= 0"));
}
