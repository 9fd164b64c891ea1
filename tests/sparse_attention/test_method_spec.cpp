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
  CHECK_THAT(error_of("sparge"), Catch::Contains("unknown method 'sparge'"));
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

TEST_CASE("method_spec.sla defaults, spelling and checks", "[sparse]") {
  auto d = sattn::parse_method("sla");
  REQUIRE(d.is_ok());
  const sattn::MethodSpec& s = d.value();
  CHECK(s.dynamic == sattn::DynamicMethod::Sla);
  CHECK(s.is_dynamic());
  CHECK(!s.is_dense());
  // The rule stays dense: rule-based paths (rule_error, plan, allowed) see every valid key.
  CHECK(s.rule.method == MaskMethod::Dense);
  CHECK(s.sla.critical == 0.05);
  CHECK(s.sla.marginal == 0.10);
  CHECK(sattn::method_str(s) == "sla:critical=0.05,marginal=0.1");

  auto u = sattn::parse_method("sla:critical=0.05,marginal=0.10");  // the spelling
  REQUIRE(u.is_ok());
  CHECK(sattn::method_str(u.value()) == "sla:critical=0.05,marginal=0.1");
  auto t = sattn::parse_method("sla:marginal=0,critical=0.3");
  REQUIRE(t.is_ok());
  CHECK(t.value().sla.critical == 0.3);
  CHECK(t.value().sla.marginal == 0.0);
  CHECK(sattn::method_str(t.value()) == "sla:critical=0.3,marginal=0");
  auto all = sattn::parse_method("sla:critical=1,marginal=0");
  REQUIRE(all.is_ok());
  CHECK(sattn::method_str(all.value()) == "sla:critical=1,marginal=0");
  // Canonical spellings parse back to the same values, also for shares without a short decimal.
  for (const char* text : {"sla:critical=0.1234567890123,marginal=0.3", "sla:critical=0.7,marginal=0.3",
                           "sla:critical=1e-3,marginal=0.999"}) {
    auto a = sattn::parse_method(text);
    REQUIRE(a.is_ok());
    auto b = sattn::parse_method(sattn::method_str(a.value()));
    REQUIRE(b.is_ok());
    CHECK(b.value().sla.critical == a.value().sla.critical);
    CHECK(b.value().sla.marginal == a.value().sla.marginal);
    CHECK(sattn::method_str(b.value()) == sattn::method_str(a.value()));
  }
  // A GNA/GRAT spec is not dynamic.
  CHECK(!sattn::parse_method("grat").value().is_dynamic());
  CHECK(!sattn::parse_method("dense").value().is_dynamic());
}

TEST_CASE("method_spec.sla errors", "[sparse]") {
  CHECK_THAT(error_of("sla:critical=0"), Catch::Contains("critical must be in (0, 1]"));
  CHECK_THAT(error_of("sla:critical=1.5"), Catch::Contains("expected a number in [0, 1]"));
  CHECK_THAT(error_of("sla:critical=-0.1"), Catch::Contains("expected a number in [0, 1]"));
  CHECK_THAT(error_of("sla:critical=abc"), Catch::Contains("expected a number in [0, 1]"));
  CHECK_THAT(error_of("sla:critical=0.1x"), Catch::Contains("expected a number in [0, 1]"));
  CHECK_THAT(error_of("sla:critical="), Catch::Contains("expected a number in [0, 1]"));
  CHECK_THAT(error_of("sla:marginal=1"), Catch::Contains("marginal must be in [0, 1)"));
  CHECK_THAT(error_of("sla:critical=0.6,marginal=0.5"), Catch::Contains("exceeds 1"));
  CHECK_THAT(error_of("sla:topk=0.5"), Catch::Contains("unknown sla key 'topk'"));
  CHECK_THAT(error_of("sla:critical=0.1,critical=0.2"), Catch::Contains("given twice"));
  CHECK_THAT(error_of("sla:critical"), Catch::Contains("not key=value"));
}

TEST_CASE("method_spec.quant on gna and grat", "[sparse]") {
  auto g = sattn::parse_method("gna:window=1x8x8,quant=int8");
  REQUIRE(g);
  CHECK(g->quant == sattn::AttnQuant::Int8);
  CHECK(g->rule.method == MaskMethod::Neighborhood);
  CHECK(sattn::method_str(*g) == "gna:window=1x8x8,stride=1x1x1,dilation=1x1x1,causal=0x0x0,quant=int8");
  auto again = sattn::parse_method(sattn::method_str(*g));
  REQUIRE(again);
  CHECK(again->quant == sattn::AttnQuant::Int8);
  auto r = sattn::parse_method("grat:quant=int8-fp8pv,group=1x4x4");
  REQUIRE(r);
  CHECK(r->quant == sattn::AttnQuant::Int8Fp8Pv);
  CHECK(sattn::method_str(*r) == "grat:variant=B,group=1x4x4,radius=1,quant=int8-fp8pv");
  auto none = sattn::parse_method("gna:window=1x8x8,quant=none");
  REQUIRE(none);
  CHECK(sattn::method_str(*none) == "gna:window=1x8x8,stride=1x1x1,dilation=1x1x1,causal=0x0x0");
  auto four = sattn::parse_method("grat:group=1x4x4,quant=int4");
  REQUIRE(four);
  CHECK(four->quant == sattn::AttnQuant::Int4);
  CHECK(sattn::method_str(*four) == "grat:variant=B,group=1x4x4,radius=1,quant=int4");
  for (const char* bad : {"gna:window=1x8x8,quant=int3", "gna:window=1x8x8,quant=fp16", "sla:quant=int8",
                          "gna:window=1x8x8,quant=int8,quant=int8"}) {
    INFO(bad);
    auto m = sattn::parse_method(bad);
    REQUIRE(!m);
    CHECK(m.status().message().find("quant") != std::string::npos);
  }
}
