// FluxPipeline with LoadOptions::offload (ditrun generate --offload) on the CPU: the embedded model
// (models/ditrun-shapes) gives the very same image as with every component resident, components load
// stage by stage in generate(), a bad folder still fails in load(), and the load report / CLI lines.
#include <filesystem>
#include <string>
#include <vector>

#include "app/pipeline/flux_pipeline.h"
#include "harness/run.h"
#include "harness/safetensors_writer.h"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;

static const std::string kTiny = std::string(DITRUN_FIXTURES_DIR) + "/e2e/tiny-flux";

static app::ComponentPaths embedded_paths(app::ModelPathArgs args = {}) {
  if (args.model.empty()) args.model = app::embedded_model_dir();
  auto paths = app::resolve_model_paths(args);
  INFO(paths.status().message());
  REQUIRE(paths);
  return *paths;
}

static std::shared_ptr<app::FluxPipeline> load(const rt::Context& ctx, bool offload, const app::ComponentPaths& paths) {
  auto pipe = app::FluxPipeline::load(ctx, paths, app::LoadOptions{offload});
  INFO(pipe.status().message());
  REQUIRE(pipe);
  return *pipe;
}

static const app::ProgressFn kQuiet = [](const char*, int, int) {};

TEST_CASE("offload gives the same image as resident components", "[offload]") {
  const rt::Context ctx;
  const auto paths = embedded_paths();
  const auto resident = load(ctx, false, paths);
  const auto offload = load(ctx, true, paths);
  CHECK_FALSE(resident->offload());
  CHECK(offload->offload());

  // Resident: load() placed the four components; offload: none until generate().
  const auto& placed = resident->load_report().components;
  REQUIRE(placed.size() == 4);
  CHECK(offload->load_report().components.empty());
  CHECK(resident->load_report().seconds > 0);
  for (const auto& c : placed) {
    INFO(c.name);
    CHECK(c.params > 0);
    CHECK(c.bytes == size_t(c.params) * 4);  // f32 on the CPU
    CHECK(c.dtype == rt::DType::F32);
    CHECK(c.device.is_cpu());
  }

  // True CFG on (empty negative prompt) so both encodings and both transformer passes run.
  app::GenerateParams p;
  p.prompt = "a large red circle at the left on a blue background";
  p.negative_prompt = "";
  p.true_cfg = 2.f;
  p.steps = 3;
  p.width = 128;
  p.height = 96;
  p = resident->with_defaults(p);

  std::vector<std::string> resident_loads;
  auto a = resident->generate(ctx, p, kQuiet, [&](const app::ComponentLoad& c) { resident_loads.push_back(c.name); });
  REQUIRE(a);
  CHECK(resident_loads.empty());

  std::vector<app::ComponentLoad> loads;
  std::vector<std::string> order;  // loads interleaved with the stages (the step counter starts after the transformer loads)
  const app::ProgressFn stages = [&](const char* stage, int i, int) {
    if (i == 0) order.push_back(stage);
  };
  for (int call = 0; call < 2; ++call) {  // every call reloads
    loads.clear();
    order.clear();
    auto b = offload->generate(ctx, p, stages, [&](const app::ComponentLoad& c) {
      loads.push_back(c);
      order.push_back(c.name);
    });
    REQUIRE(b);
    REQUIRE(b->shape() == a->shape());
    CHECK(b->to_vector() == a->to_vector());  // bitwise: the same computation
    CHECK(order == std::vector<std::string>{"encode", "t5_encoder", "clip_text_encoder", "transformer", "denoise", "decode", "vae"});
  }
  // What generate() placed is what load() places without offload.
  REQUIRE(loads.size() == 4);
  for (const auto& c : loads) {
    INFO(c.name);
    bool found = false;
    for (const auto& r : placed) {
      if (r.name != c.name) continue;
      found = true;
      CHECK(c.params == r.params);
      CHECK(c.bytes == r.bytes);
    }
    CHECK(found);
  }
}

TEST_CASE("offload still checks the whole folder in load", "[offload]") {
  const rt::Context ctx;
  for (bool offload : {false, true}) {
    INFO("offload " << offload);
    {  // a CLIP folder given as the VAE: refused by the family check
      const auto paths = embedded_paths({"", "", app::embedded_model_dir() + "/text_encoder", "", ""});
      auto pipe = app::FluxPipeline::load(ctx, paths, app::LoadOptions{offload});
      REQUIRE_FALSE(pipe);
      CHECK(pipe.status().message().find("--vae") != std::string::npos);
    }
    {  // the tiny fixture's T5 (d_model 32) with the embedded transformer (context 128)
      const auto paths = embedded_paths({"", "", "", kTiny + "/text_encoder_2", ""});
      auto pipe = app::FluxPipeline::load(ctx, paths, app::LoadOptions{offload});
      REQUIRE_FALSE(pipe);
      CHECK(pipe.status().message().find("T5 encoder width 32 does not match the transformer's context width") !=
            std::string::npos);
    }
  }
}

TEST_CASE("generate prints each component's load and honours --quiet, with and without --offload", "[offload][cli]") {
  const std::string dir = test::make_temp_dir("offload_cli");
  const std::string base = "generate --steps 2 -W 64 -H 64 --prompt 'a small red circle at the top on a blue background' --out ";
  {
    const auto r = test::run_ditrun(base + test::q(dir + "/a.png"));
    INFO(r.out);
    REQUIRE(r.rc == 0);
    for (const char* name : {"transformer", "vae", "t5_encoder", "clip_text_encoder"})
      CHECK(r.stderr_text.find(std::string("ditrun: loaded ") + name + ": ") != std::string::npos);
    CHECK(r.stderr_text.find(" M params, ") != std::string::npos);
    CHECK(r.stderr_text.find(" MB f32 on cpu in ") != std::string::npos);
    CHECK(r.stderr_text.find("; loaded in ") != std::string::npos);
  }
  {
    const auto r = test::run_ditrun(base + test::q(dir + "/b.png") + " --offload");
    INFO(r.out);
    REQUIRE(r.rc == 0);
    // Components load during generation: after "encode..." / "decode..."
    const size_t encode = r.stderr_text.find("ditrun: encode..."), decode = r.stderr_text.find("ditrun: decode...");
    REQUIRE(encode != std::string::npos);
    REQUIRE(decode != std::string::npos);
    const size_t t5 = r.stderr_text.find("ditrun: loaded t5_encoder: "), vae = r.stderr_text.find("ditrun: loaded vae: ");
    REQUIRE(t5 != std::string::npos);
    REQUIRE(vae != std::string::npos);
    CHECK(t5 > encode);
    CHECK(vae > decode);
    CHECK(r.stderr_text.find("components loaded in ") != std::string::npos);
  }
  CHECK(test::run_ditrun("generate --help").stdout_text.find("--offload") != std::string::npos);
  const auto q = test::run_ditrun(base + test::q(dir + "/c.png") + " --offload -q");
  CHECK(q.rc == 0);
  CHECK(q.stderr_text.empty());
  fs::remove_all(dir);
}
