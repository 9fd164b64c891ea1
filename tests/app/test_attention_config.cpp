// Attention policies per layer and step (issue 5, "Policies"): the config file's parsing and its errors,
// per-layer methods in AttentionPolicy (method_for, dense_key, describe), the automatic dense fallback's
// decision on a tiny and a large token grid, and `generate --attention-config` against the same flags on
// the embedded model (CPU).
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "app/pipeline/attention_config.h"
#include "dit/flux/attention_policy.h"
#include "harness/png_compare.h"
#include "harness/run.h"
#include "harness/safetensors_writer.h"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;

static const std::string kPrompt = "a large red circle at the left on a blue background";
static const std::string kGna = "gna:window=1x8x8,stride=1x4x4";
static const std::string kGrat = "grat:variant=B,group=1x8x8,radius=1";

static sattn::MethodSpec method(const std::string& s) {
  auto m = sattn::parse_method(s);
  INFO(s);
  REQUIRE(m);
  return *m;
}

TEST_CASE("attention_config.parse_good", "[attention]") {
  const std::string text = R"({"method": ")" + kGna + R"(", "dense_steps": 4, "dense_layers": [0, 5],
                              "layers": {"3": ")" + kGrat + R"(", "12": "dense"}})";
  auto c = app::parse_attention_config(text, "cfg.json");
  INFO(c.status().message());
  REQUIRE(c);
  const dit::flux::AttentionPolicy& p = c->policy;
  CHECK(sattn::method_str(p.method) == sattn::method_str(method(kGna)));
  CHECK(p.dense_steps == 4);
  CHECK(p.dense_layers == std::vector<int>{0, 5});
  REQUIRE(p.layer_methods.size() == 2);
  CHECK(sattn::method_str(p.layer_methods.at(3)) == sattn::method_str(method(kGrat)));
  CHECK(p.layer_methods.at(12).is_dense());
  CHECK(c->has_method);
  CHECK(c->has_dense_steps);
  CHECK(c->has_dense_layers);
  CHECK_FALSE(p.fallback);  // the fallback is the caller's choice, not the file's
  // Every key is optional.
  auto empty = app::parse_attention_config("{}", "e.json");
  REQUIRE(empty);
  CHECK(!empty->has_method);
  CHECK(!empty->policy.any_sparse());
}

TEST_CASE("attention_config.errors", "[attention]") {
  struct Case {
    std::string text, want1, want2;
  };
  const std::vector<Case> cases = {
      {R"({"method": "gna:window=1x8x8",)", "not valid JSON", "parse error"},
      {R"([1, 2])", "expected a JSON object", "array"},
      {R"({"metod": "dense"})", "unknown key \"metod\"", "expected \"method\", \"dense_steps\""},
      {R"({"method": "sparse:foo"})", "\"method\": ", "expected a method such as"},
      {R"({"method": 3})", "\"method\": expected a method", "got 3"},
      {R"({"method": "gna:stride=1x8x8"})", "\"method\"", "window"},
      {R"({"dense_steps": -1})", "\"dense_steps\": expected an integer in 0..1000", "got -1"},
      {R"({"dense_steps": "4"})", "\"dense_steps\": expected an integer", "got \"4\""},
      {R"({"dense_steps": 2.5})", "\"dense_steps\"", "got 2.5"},
      {R"({"dense_layers": 3})", "\"dense_layers\": expected an array of layer indices", "got 3"},
      {R"({"dense_layers": [0, -2]})", "\"dense_layers\": expected an array", "got -2 in it"},
      {R"({"dense_layers": [1, 1]})", "\"dense_layers\": layer 1 is listed twice", ""},
      {R"({"layers": ["dense"]})", "\"layers\": expected an object from layer index to method", ""},
      {R"({"layers": {"x": "dense"}})", "\"layers\": key \"x\" is not a layer index", "decimal integer >= 0"},
      {R"({"layers": {"-1": "dense"}})", "key \"-1\" is not a layer index", ""},
      {R"({"layers": {"2": "grat:variant=Q"}})", "\"layers\" \"2\": ", "expected a method such as"},
      {R"({"layers": {"2": 7}})", "\"layers\" \"2\": expected a method", "got 7"},
      {R"({"dense_layers": [2], "layers": {"2": "dense"}})", "layer 2 is in \"dense_layers\" and in \"layers\"", ""},
  };
  for (const Case& c : cases) {
    auto r = app::parse_attention_config(c.text, "my/config.json");
    INFO(c.text << " -> " << r.status().message());
    REQUIRE(!r);
    const std::string& msg = r.status().message();
    CHECK(msg.rfind("my/config.json: ", 0) == 0);
    CHECK(msg.find(c.want1) != std::string::npos);
    CHECK(msg.find(c.want2) != std::string::npos);
  }
  auto missing = app::load_attention_config("/nonexistent/attention.json");
  REQUIRE(!missing);
  CHECK(missing.status().message().find("/nonexistent/attention.json: cannot open") != std::string::npos);
}

TEST_CASE("attention_config.per_layer_policy", "[attention]") {
  dit::flux::AttentionPolicy p;
  p.method = method(kGna);
  p.dense_steps = 1;
  p.dense_layers = {0};
  p.layer_methods = {{2, method(kGrat)}, {3, method("gna:window=1x4x4")}, {4, method(kGna)}, {5, method("dense")}};
  CHECK(p.method_for(0, 2).is_dense());  // warm-up
  CHECK(p.method_for(1, 0).is_dense());  // dense layer
  CHECK(sattn::method_str(p.method_for(1, 1)) == sattn::method_str(p.method));
  CHECK(sattn::method_str(p.method_for(1, 2)) == sattn::method_str(method(kGrat)));
  CHECK(sattn::method_str(p.method_for(1, 3)) == sattn::method_str(method("gna:window=1x4x4")));
  CHECK(p.method_for(1, 5).is_dense());
  // One tag per distinct method: d dense, s the policy's method, A, B, ... the other per-layer methods.
  CHECK(p.dense_key(0, 7) == "ddddddd");
  CHECK(p.dense_key(1, 7) == "dsABsds");
  CHECK(p.distinct_methods().size() == 4);
  // Two layers swapping their methods give another key.
  dit::flux::AttentionPolicy q = p;
  q.layer_methods[2] = method("gna:window=1x4x4");
  q.layer_methods[3] = method(kGrat);
  CHECK(q.dense_key(1, 7) == "dsABsds");  // tags follow layer order, so the work differs only by what A and B are
  q.layer_methods[4] = method(kGrat);
  CHECK(q.dense_key(1, 7) == "dsABBds");
  CHECK(p.any_sparse());
  CHECK(p.describe() == sattn::method_str(p.method) + " after 1 dense step, dense layers 0, layer 2 " +
                            sattn::method_str(method(kGrat)) + ", layer 3 " + sattn::method_str(method("gna:window=1x4x4")) +
                            ", layer 4 " + sattn::method_str(p.method) + ", layer 5 dense");
  CHECK(p.layers_of(p.method) == "every layer but 0,2,3,5");
  CHECK(p.layers_of(method(kGrat)) == "layer 2");
  CHECK(p.layer_error(6) == "");
  CHECK(p.layer_error(5).find("layer 5 (dense) is out of range; the model has 5 layers (0..4)") != std::string::npos);
  p.dense_layers = {9};
  CHECK(p.layer_error(6).find("dense layer 9 is out of range") != std::string::npos);
  // A dense policy method with one sparse layer is still a sparse policy.
  dit::flux::AttentionPolicy one;
  one.layer_methods[1] = method(kGna);
  CHECK(one.any_sparse());
  CHECK(one.describe() == "dense with layer 1 " + sattn::method_str(method(kGna)));
  CHECK(one.dense_key(0, 3) == "dAd");
}

// A Flux call's params on the CPU: q = k = v a broadcast view of the real shape (nothing reads the data).
static sattn::AttentionParams flux_call(int64_t grid, int64_t text, const std::string& m) {
  sattn::AttentionParams p;
  p.tokens = dit::flux::joint_tokens(text, grid, grid);
  p.q = p.k = p.v = rt::Tensor::empty({1, 1, 4, 64}).expand({1, p.tokens.seq_len(), 4, 64});
  p.method = method(m);
  return p;
}

TEST_CASE("attention_config.fallback_decision", "[attention]") {
  const rt::Context ctx;
  // 256² on the embedded model: a 16x16 grid + 24 text tokens (3 query tiles of 128): the window covers
  // most of every tile, so the kernel would visit nearly every tile.
  const sattn::AttentionParams tiny = flux_call(16, 24, kGna);
  const std::string why = dit::flux::dense_fallback_reason(ctx, tiny);
  INFO(why);
  CHECK(why.find("tile density") != std::string::npos);
  CHECK(why.find(">= 0.50 (the block-sparse kernel would be slower than dense)") != std::string::npos);
  // 1024²: a 64x64 grid, the same window visits a small share of the tiles.
  const sattn::AttentionParams large = flux_call(64, 24, kGna);
  CHECK(dit::flux::dense_fallback_reason(ctx, large) == "");
  CHECK(dit::flux::dense_fallback_reason(ctx, flux_call(16, 24, "dense")) == "");

  dit::flux::AttentionPolicy p;
  p.method = method(kGna);
  // Off by default: existing callers (compare) get the method they asked for.
  CHECK(sattn::method_str(p.call_method(ctx, tiny)) == sattn::method_str(tiny.method));
  p.fallback = true;
  CHECK(p.call_method(ctx, tiny).is_dense());
  CHECK(p.call_method(ctx, tiny).is_dense());  // cached
  CHECK(sattn::method_str(p.call_method(ctx, large)) == sattn::method_str(large.method));
}

static void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// Whether two PNGs hold the same pixels.
static bool same_png(const std::string& a, const std::string& b) {
  const test::PngDiff d = test::compare_png(a, b);
  INFO(a << " vs " << b << ": " << d.error);
  REQUIRE(d.ok);
  return d.worst == 0;
}

// 64² (a 4x4 token grid), 2 steps: a 2x2 window runs only without the fallback (the grid is one tile).
TEST_CASE("attention_config.generate_config_equals_flags", "[attention]") {
  const std::string dir = test::make_temp_dir("attention_config_generate");
  const std::string common = "generate -q -p " + test::q(kPrompt) + " -W 64 -H 64 --steps 2 --seed 3 --no-attention-fallback -o ";
  const std::string cfg = dir + "/attention.json", layers_cfg = dir + "/layers.json";
  write_file(cfg, R"({"method": "gna:window=1x2x2", "dense_steps": 1, "dense_layers": [1]})");
  write_file(layers_cfg, R"({"method": "gna:window=1x2x2", "dense_steps": 1, "dense_layers": [1], "layers": {"4": "dense"}})");
  const std::string from_file = dir + "/file.png", from_flags = dir + "/flags.png", with_layers = dir + "/layers.png",
                    dense = dir + "/dense.png";
  test::RunResult r = test::run_ditrun(common + test::q(from_file) + " --attention-config " + test::q(cfg));
  INFO(r.out);
  REQUIRE(r.rc == 0);
  r = test::run_ditrun(common + test::q(from_flags) + " --attention gna:window=1x2x2 --dense-steps 1 --dense-layers 1");
  INFO(r.out);
  REQUIRE(r.rc == 0);
  r = test::run_ditrun(common + test::q(with_layers) + " --attention-config " + test::q(layers_cfg));
  INFO(r.out);
  REQUIRE(r.rc == 0);
  REQUIRE(test::run_ditrun(common + test::q(dense)).rc == 0);
  CHECK(same_png(from_file, from_flags));
  CHECK(!same_png(from_file, dense));        // the method ran
  CHECK(!same_png(from_file, with_layers));  // the per-layer method reached layer 4
  // Flags replace the file's keys: the file with --dense-steps 2 equals the flags with --dense-steps 2.
  const std::string file2 = dir + "/file2.png", flags2 = dir + "/flags2.png";
  REQUIRE(test::run_ditrun(common + test::q(file2) + " --attention-config " + test::q(cfg) + " --dense-steps 2").rc == 0);
  REQUIRE(test::run_ditrun(common + test::q(flags2) + " --attention gna:window=1x2x2 --dense-steps 2 --dense-layers 1").rc == 0);
  CHECK(same_png(file2, flags2));
  fs::remove_all(dir);
}

TEST_CASE("attention_config.generate_errors", "[attention]") {
  const std::string dir = test::make_temp_dir("attention_config_errors");
  const std::string out = dir + "/x.png", cfg = dir + "/a.json";
  const std::string common = "generate -p " + test::q(kPrompt) + " -W 256 -H 256 --steps 1 -o " + test::q(out) +
                             " --attention-config " + test::q(cfg);
  auto run = [&](const std::string& text, const std::string& flags = "") {
    write_file(cfg, text);
    return test::run_ditrun(common + flags);
  };
  test::RunResult r = run(R"({"method": "gna:window=1x8x8", "bogus": 1})");
  CHECK(r.rc == 2);
  CHECK(r.stderr_text.find(cfg + ": unknown key \"bogus\"") != std::string::npos);
  r = run("{not json");
  CHECK(r.rc == 2);
  CHECK(r.stderr_text.find(cfg + ": not valid JSON") != std::string::npos);
  // The embedded model has 6 layers (2 double, 4 single blocks): known after the load.
  r = run(R"({"method": "gna:window=1x8x8", "layers": {"6": "dense"}})");
  CHECK(r.rc == 2);
  CHECK(r.stderr_text.find(cfg + ": layer 6 (dense) is out of range; the model has 6 layers (0..5)") != std::string::npos);
  r = run(R"({"method": "gna:window=1x8x8"})", " --dense-layers 1,7");
  CHECK(r.rc == 2);
  CHECK(r.stderr_text.find("--dense-layers: dense layer 7 is out of range") != std::string::npos);
  // A per-layer method that does not fit 256² (a 16x16 grid).
  r = run(R"({"method": "gna:window=1x8x8", "layers": {"2": "gna:window=1x32x32"}})");
  CHECK(r.rc == 2);
  CHECK(r.stderr_text.find(cfg + ": \"layers\" \"2\" does not fit 256x256 (a 16x16 token grid)") != std::string::npos);
  CHECK(!fs::exists(out));
  fs::remove_all(dir);
}

// The fallback's one line per method and reason: 256² is a 16x16 grid, too small for an 8x8 window to skip tiles.
TEST_CASE("attention_config.generate_logs_fallback", "[attention]") {
  const std::string dir = test::make_temp_dir("attention_config_fallback");
  const std::string out = dir + "/x.png", dense = dir + "/dense.png";
  test::RunResult r = test::run_ditrun("generate -p " + test::q(kPrompt) + " -W 256 -H 256 --steps 2 --dense-layers 0 -o " +
                                       test::q(out) + " --attention " + kGna);
  INFO(r.out);
  REQUIRE(r.rc == 0);
  const std::string line = "ditrun: attention: " + sattn::method_str(method(kGna)) +
                           " falls back to dense on every layer but 0 at 16x16 tokens: tile density ";
  const size_t at = r.stderr_text.find(line);
  CHECK(at != std::string::npos);
  CHECK(r.stderr_text.find(line, at + 1) == std::string::npos);  // once per run
  REQUIRE(test::run_ditrun("generate -q -p " + test::q(kPrompt) + " -W 256 -H 256 --steps 2 -o " + test::q(dense)).rc == 0);
  CHECK(same_png(out, dense));
  fs::remove_all(dir);
}
