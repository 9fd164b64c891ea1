// True CFG with an empty negative prompt and a model's defaults for it: ditrun_defaults.json's
// "true_cfg" and "negative_prompt" (read in FluxPipeline::load, filled in by with_defaults), the
// diffusers rule that "" is a negative prompt (only an absent one turns true CFG off), and what
// `ditrun generate` records in the PNG. On the CPU with the embedded model (models/ditrun-shapes).
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/io/png_writer.h"
#include "app/pipeline/flux_pipeline.h"
#include "harness/run.h"
#include "harness/safetensors_writer.h"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;

static const std::string kPrompt = "a large red circle at the left on a blue background";

// The embedded model's defaults without any true-CFG keys, so these tests hold whatever it ships.
static nlohmann::json embedded_defaults() {
  std::ifstream in(app::embedded_model_dir() + "/ditrun_defaults.json");
  nlohmann::json j = nlohmann::json::parse(in);
  j.erase("true_cfg");
  j.erase("negative_prompt");
  return j;
}

// A model folder with the embedded model's components (linked) and `defaults` as its ditrun_defaults.json.
static std::string model_with_defaults(const std::string& dir, const nlohmann::json& defaults) {
  const fs::path src(app::embedded_model_dir());
  fs::create_directories(dir);
  for (const char* entry : {"model_index.json", "transformer", "vae", "text_encoder", "text_encoder_2", "tokenizer",
                            "tokenizer_2", "scheduler"})
    fs::create_symlink(src / entry, fs::path(dir) / entry);
  std::ofstream(fs::path(dir) / "ditrun_defaults.json") << defaults.dump(1);
  return dir;
}

// load() of the embedded model with `defaults` as its defaults file (offload: nothing to place).
static rt::Result<std::shared_ptr<app::FluxPipeline>> load_with(const rt::Context& ctx, const std::string& defaults_text) {
  const std::string dir = test::make_temp_dir("defaults_file");
  const std::string file = dir + "/ditrun_defaults.json";
  std::ofstream(file) << defaults_text;
  auto paths = app::resolve_model_paths({app::embedded_model_dir(), "", "", "", ""});
  REQUIRE(paths);
  paths->defaults = file;
  auto pipe = app::FluxPipeline::load(ctx, *paths, app::LoadOptions{true});
  fs::remove_all(dir);
  return pipe;
}

TEST_CASE("ditrun_defaults.json: true_cfg and negative_prompt", "[defaults]") {
  const rt::Context ctx;
  {
    auto pipe = load_with(ctx, R"({"width": 256, "true_cfg": 2.5, "negative_prompt": ""})");
    INFO(pipe.status().message());
    REQUIRE(pipe);
    CHECK((*pipe)->defaults().true_cfg == 2.5f);
    REQUIRE((*pipe)->defaults().negative_prompt.has_value());
    CHECK((*pipe)->defaults().negative_prompt->empty());
  }
  for (const char* text : {R"({"width": 256})", R"({"negative_prompt": null})"}) {
    INFO(text);
    auto pipe = load_with(ctx, text);
    REQUIRE(pipe);
    CHECK((*pipe)->defaults().true_cfg == 1.f);
    CHECK_FALSE((*pipe)->defaults().negative_prompt.has_value());
  }
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"true_cfg": "4"})", R"("true_cfg" must be a number, not "4")"},
      {R"({"true_cfg": 0.5})", R"("true_cfg" 0.5 must be >= 1)"},
      {R"({"negative_prompt": 3})", R"("negative_prompt" must be a string ("" for the unconditional branch) or null, not 3)"},
      {R"({"negative_prompt": ["a"]})", R"("negative_prompt" must be a string)"},
      {R"({"steps": "20"})", R"("steps" must be a number, not "20")"},
      {R"([1, 2])", "expected a JSON object of defaults"},
  };
  for (const auto& [text, message] : bad) {
    INFO(text);
    auto pipe = load_with(ctx, text);
    REQUIRE_FALSE(pipe);
    INFO(pipe.status().message());
    CHECK(pipe.status().message().find("ditrun_defaults.json: ") != std::string::npos);
    CHECK(pipe.status().message().find(message) != std::string::npos);
  }
}

TEST_CASE("with_defaults: each of true_cfg / negative_prompt falls back on the model's", "[defaults]") {
  const rt::Context ctx;
  auto with_cfg = load_with(ctx, R"({"true_cfg": 3, "negative_prompt": ""})");
  REQUIRE(with_cfg);
  const auto& pipe = *with_cfg;
  app::GenerateParams p;
  p.prompt = kPrompt;
  {  // neither given: the model's pair, true CFG with ""
    const auto e = pipe->with_defaults(p);
    CHECK(e.true_cfg == 3.f);
    CHECK(e.negative_prompt == std::optional<std::string>(""));
    CHECK(e.runs_true_cfg());
  }
  {  // --true-cfg 1: off whatever the model says
    auto q = p;
    q.true_cfg = 1.f;
    CHECK_FALSE(pipe->with_defaults(q).runs_true_cfg());
  }
  {  // --negative-prompt alone: the model's scale
    auto q = p;
    q.negative_prompt = "blurry";
    const auto e = pipe->with_defaults(q);
    CHECK(e.true_cfg == 3.f);
    CHECK(e.negative_prompt == std::optional<std::string>("blurry"));
  }
  {  // --true-cfg alone: the model's negative prompt
    auto q = p;
    q.true_cfg = 2.f;
    const auto e = pipe->with_defaults(q);
    CHECK(e.true_cfg == 2.f);
    CHECK(e.negative_prompt == std::optional<std::string>(""));
  }
  auto plain = load_with(ctx, embedded_defaults().dump());
  REQUIRE(plain);
  {  // a model without the keys: no CFG, and a negative prompt alone keeps scale 1 (generate notes it)
    CHECK_FALSE((*plain)->with_defaults(p).runs_true_cfg());
    auto q = p;
    q.negative_prompt = "";
    const auto e = (*plain)->with_defaults(q);
    CHECK(e.true_cfg == 1.f);
    CHECK_FALSE(e.runs_true_cfg());
  }
}

TEST_CASE("an empty negative prompt runs true CFG", "[defaults]") {
  const rt::Context ctx;
  const std::string dir = test::make_temp_dir("empty_negative");
  auto paths = app::resolve_model_paths({model_with_defaults(dir + "/model", embedded_defaults()), "", "", "", ""});
  REQUIRE(paths);
  auto loaded = app::FluxPipeline::load(ctx, *paths);
  fs::remove_all(dir);
  REQUIRE(loaded);
  const auto& pipe = *loaded;
  const app::ProgressFn quiet = [](const char*, int, int) {};
  auto image = [&](std::optional<std::string> negative, std::optional<float> scale) {
    app::GenerateParams p;
    p.prompt = kPrompt;
    p.negative_prompt = std::move(negative);
    p.true_cfg = scale;
    p.width = p.height = 64;
    p.steps = 3;
    auto r = pipe->generate(ctx, pipe->with_defaults(p), quiet);
    INFO(r.status().message());
    REQUIRE(r);
    return r->to_vector();
  };
  const auto plain = image(std::nullopt, std::nullopt);
  const auto cfg = image(std::string(), 2.f);
  CHECK(cfg != plain);
  CHECK(image(std::string(), 2.f) == cfg);      // deterministic
  CHECK(image(std::string(), 1.f) == plain);    // scale 1: off, even with a negative prompt
  CHECK(image(std::nullopt, 2.f) == plain);     // no negative prompt: off (diffusers' negative_prompt=None)
  // v = v_neg + s·(v_pos − v_neg) is exactly v_pos when the negative prompt is the prompt.
  CHECK(image(kPrompt, 4.f) == plain);
  CHECK(image(std::string("a small green square"), 2.f) != cfg);
}

static std::string png_parameters(const std::string& path) {
  auto text = app::read_png_text(path);
  REQUIRE(text);
  for (const auto& [k, v] : *text)
    if (k == "parameters") return v;
  FAIL("no parameters chunk in " << path);
  return "";
}

static std::vector<uint8_t> pixels(const std::string& path) {
  int w = 0, h = 0;
  auto px = app::read_png_rgb8(path, &w, &h);
  REQUIRE(px);
  return *px;
}

TEST_CASE("generate: --negative-prompt \"\", the model's true CFG defaults, and the PNG records what ran", "[defaults][cli]") {
  const std::string dir = test::make_temp_dir("generate_cfg");
  nlohmann::json defaults = embedded_defaults();
  const std::string plain_model = model_with_defaults(dir + "/plain_model", defaults);
  defaults["true_cfg"] = 2;
  defaults["negative_prompt"] = "";
  const std::string model = model_with_defaults(dir + "/model", defaults);
  const std::string base = "generate --steps 2 -W 64 -H 64 --prompt " + test::q(kPrompt) + " --out ";
  // Runs on plain_model unless flags name another --model.
  auto run = [&](const std::string& name, const std::string& flags) {
    const std::string model_flag = flags.find("--model") == std::string::npos ? "--model " + test::q(plain_model) + " " : "";
    const auto r = test::run_ditrun(base + test::q(dir + "/" + name) + " " + model_flag + flags);
    INFO(r.out);
    REQUIRE(r.rc == 0);
    return r;
  };
  const auto cli_empty = run("cli_empty.png", "--negative-prompt '' --true-cfg 2");
  CHECK(cli_empty.stderr_text.find("true CFG 2.00") != std::string::npos);
  CHECK(png_parameters(dir + "/cli_empty.png").find("\nnegative_prompt: \nwidth: 64") != std::string::npos);
  CHECK(png_parameters(dir + "/cli_empty.png").find("\ntrue_cfg: 2\n") != std::string::npos);

  const auto plain = run("plain.png", "");
  CHECK(plain.stderr_text.find("true CFG") == std::string::npos);
  CHECK(png_parameters(dir + "/plain.png").find("negative_prompt") == std::string::npos);
  CHECK(png_parameters(dir + "/plain.png").find("\ntrue_cfg: 1\n") != std::string::npos);
  CHECK(pixels(dir + "/cli_empty.png") != pixels(dir + "/plain.png"));

  // The model's defaults: the same as the flags above; --true-cfg 1 turns them off.
  run("model_cfg.png", "--model " + test::q(model));
  CHECK(pixels(dir + "/model_cfg.png") == pixels(dir + "/cli_empty.png"));
  CHECK(png_parameters(dir + "/model_cfg.png").find("\nnegative_prompt: \n") != std::string::npos);
  run("model_off.png", "--model " + test::q(model) + " --true-cfg 1");
  CHECK(pixels(dir + "/model_off.png") == pixels(dir + "/plain.png"));
  CHECK(png_parameters(dir + "/model_off.png").find("\ntrue_cfg: 1\n") != std::string::npos);
  run("model_neg.png", "--model " + test::q(model) + " --negative-prompt 'a small green square'");
  CHECK(png_parameters(dir + "/model_neg.png").find("\nnegative_prompt: a small green square\n") != std::string::npos);
  CHECK(png_parameters(dir + "/model_neg.png").find("\ntrue_cfg: 2\n") != std::string::npos);

  // Inert combinations say so.
  const auto neg_only = run("neg_only.png", "--negative-prompt ''");
  CHECK(neg_only.stderr_text.find("note: --negative-prompt has no effect without --true-cfg > 1") != std::string::npos);
  CHECK(pixels(dir + "/neg_only.png") == pixels(dir + "/plain.png"));
  const auto cfg_only = run("cfg_only.png", "--true-cfg 3");
  CHECK(cfg_only.stderr_text.find("note: --true-cfg 3.00 has no effect without --negative-prompt") != std::string::npos);
  fs::remove_all(dir);
}
