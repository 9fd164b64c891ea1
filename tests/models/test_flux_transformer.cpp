// Flux transformer and denoising-loop parity against the diffusers fixtures, plus the loader's
// strictness and the layout detection.
#include <filesystem>

#include "app/parity/fixture.h"
#include "dit/flux/config.h"
#include "dit/flux/model.h"
#include "dit/flux/names.h"
#include "app/pipeline/denoise.h"
#include "harness/compare.h"
#include "harness/fixtures.h"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;

TEST_CASE("flux_transformer fixtures match diffusers", "[flux]") { test::check_parity_fixtures("flux_transformer"); }

TEST_CASE("flux_denoise fixtures match the FluxPipeline loop", "[flux]") { test::check_parity_fixtures("flux_denoise"); }

static std::string fixture(const std::string& name) {
  return (fs::path(DITRUN_FIXTURES_DIR) / "parity" / name).string();
}

static rt::Status load_status(const weights::TensorStore& store, const dit::flux::Config& cfg) {
  auto mapped = dit::flux::map_flux_checkpoint(store);
  if (!mapped.is_ok()) return mapped.status();
  auto m = dit::flux::FluxTransformer::load(weights::WeightLoader(mapped.value(), "flux transformer"), cfg);
  return m.status();
}

TEST_CASE("flux loader reports missing and wrong-shaped tensors", "[flux]") {
  auto f = app::load_parity_fixture(fixture("flux_transformer_diffusers_guidance_b1_4x4.safetensors"));
  REQUIRE(f.is_ok());
  auto cfg = dit::flux::Config::from_diffusers_json(f->config);
  REQUIRE(cfg.is_ok());
  REQUIRE(load_status(f->weights, *cfg).is_ok());

  SECTION("missing tensor") {
    const auto store = test::rewritten(f->weights, [](auto& ts) {
      std::erase_if(ts, [](const test::StTensor& t) { return t.name == "transformer_blocks.1.ff.net.2.weight"; });
    });
    const rt::Status st = load_status(store, *cfg);
    REQUIRE(!st.is_ok());
    CHECK_THAT(st.message(), Catch::Contains("missing") && Catch::Contains("double_blocks.1.img_mlp.2.weight"));
  }
  SECTION("wrong shape") {
    const auto store = test::rewritten(f->weights, [](auto& ts) {
      for (auto& t : ts)
        if (t.name == "x_embedder.weight") t = test::st_f32(t.name, {32, 8}, std::vector<float>(256, 0.f));
    });
    const rt::Status st = load_status(store, *cfg);
    REQUIRE(!st.is_ok());
    CHECK_THAT(st.message(), Catch::Contains("wrong shape") && Catch::Contains("img_in.weight") &&
                                 Catch::Contains("[32, 16]") && Catch::Contains("[32, 8]"));
  }
  SECTION("schnell config on a dev checkpoint: guidance_in is unexpected") {
    dit::flux::Config schnell = *cfg;
    schnell.guidance_embed = false;
    const rt::Status st = load_status(f->weights, schnell);
    REQUIRE(!st.is_ok());
    CHECK_THAT(st.message(), Catch::Contains("unexpected") && Catch::Contains("guidance_in"));
  }
}

TEST_CASE("flux layout detection", "[flux]") {
  auto bfl = app::load_parity_fixture(fixture("flux_transformer_bfl_noguidance_b1_4x4.safetensors"));
  auto pre = app::load_parity_fixture(fixture("flux_transformer_bfl_prefixed_guidance_b1_4x6.safetensors"));
  auto dif = app::load_parity_fixture(fixture("flux_transformer_diffusers_noguidance_b2_4x4.safetensors"));
  auto t5 = app::load_parity_fixture(fixture("t5_encoder_shared_b1_t12.safetensors"));
  REQUIRE((bfl.is_ok() && pre.is_ok() && dif.is_ok() && t5.is_ok()));
  CHECK(dit::flux::detect_flux_layout(bfl->weights) == dit::flux::Layout::BFL);
  CHECK(dit::flux::detect_flux_layout(pre->weights) == dit::flux::Layout::BFL);
  CHECK(dit::flux::detect_flux_layout(dif->weights) == dit::flux::Layout::Diffusers);
  CHECK(dit::flux::detect_flux_layout(t5->weights) == dit::flux::Layout::Unknown);
  auto mapped = dit::flux::map_flux_checkpoint(t5->weights);
  REQUIRE(!mapped.is_ok());
  CHECK_THAT(mapped.status().message(), Catch::Contains("does not look like a Flux transformer") &&
                                            Catch::Contains("encoder.") && Catch::Contains("double_blocks.*"));
}

TEST_CASE("flux config from checkpoint shapes", "[flux]") {
  auto f = app::load_parity_fixture(fixture("flux_transformer_bfl_prefixed_guidance_b1_4x6.safetensors"));
  REQUIRE(f.is_ok());
  auto mapped = dit::flux::map_flux_checkpoint(f->weights);
  REQUIRE(mapped.is_ok());
  auto from_json = dit::flux::Config::from_diffusers_json(f->config);
  auto inferred = dit::flux::Config::from_checkpoint(*mapped.value(), &f->config);
  REQUIRE((from_json.is_ok() && inferred.is_ok()));
  CHECK(inferred->str() == from_json->str());
  CHECK(inferred->depth == 2);
  CHECK(inferred->depth_single == 2);
  CHECK(inferred->head_dim == 16);
  CHECK(inferred->num_heads == 2);
  CHECK(inferred->guidance_embed);
  // Head dim 16 has no default RoPE axes: without the json it must ask for it.
  auto no_json = dit::flux::Config::from_checkpoint(*mapped.value());
  REQUIRE(!no_json.is_ok());
  CHECK_THAT(no_json.status().message(), Catch::Contains("axes_dims_rope"));
}

TEST_CASE("flux presets", "[flux]") {
  auto dev = dit::flux::Config::preset("flux-dev");
  auto schnell = dit::flux::Config::preset("flux-schnell");
  REQUIRE((dev.is_ok() && schnell.is_ok()));
  CHECK(dev->guidance_embed);
  CHECK(!schnell->guidance_embed);
  CHECK(dev->validate().is_ok());
  CHECK(dev->mlp_hidden() == 12288);
  CHECK(!dit::flux::Config::preset("flux-pro").is_ok());
  auto defaults = dit::flux::Config::from_diffusers_json(nlohmann::json::object());
  REQUIRE(defaults.is_ok());
  CHECK(defaults->str() == schnell->str());  // diffusers' default guidance_embeds is False
}

TEST_CASE("latent packing round-trips and matches the id layout", "[flux]") {
  std::vector<float> v(2 * 3 * 4 * 6);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i);
  const rt::Tensor z = rt::Tensor::from_vector(v, {2, 3, 4, 6});
  const rt::Context ctx;
  const rt::Tensor packed = app::pack_latents(ctx, z);
  REQUIRE(packed.shape() == rt::Shape{2, 6, 12});
  // img[b, n, ch·4 + dy·2 + dx] = z[b, ch, 2r+dy, 2c+dx], n = r·3 + c
  CHECK(packed.at({1, 4, 2 * 4 + 1 * 2 + 0}) == z.at({1, 2, 2 * 1 + 1, 2 * 1 + 0}));
  const rt::Tensor back = app::unpack_latents(ctx, packed, 4, 6);
  CHECK(test::compare(back, z).max_abs == 0.0);
  const rt::Tensor ids = app::latent_image_ids(2, 3);
  REQUIRE(ids.shape() == rt::Shape{6, 3});
  CHECK(ids.at({4, 0}) == 0.f);
  CHECK(ids.at({4, 1}) == 1.f);
  CHECK(ids.at({4, 2}) == 1.f);
}

TEST_CASE("true CFG with the negative equal to the positive leaves the loop unchanged", "[flux]") {
  auto f = app::load_parity_fixture(fixture("flux_denoise_dev_b1_4x6_n4.safetensors"));
  REQUIRE(f.is_ok());
  auto store = dit::flux::map_flux_checkpoint(f->weights);
  REQUIRE(store.is_ok());
  auto cfg = dit::flux::Config::from_diffusers_json(f->config["transformer"]);
  REQUIRE(cfg.is_ok());
  auto model = dit::flux::FluxTransformer::load(weights::WeightLoader(store.value()), *cfg);
  REQUIRE(model.is_ok());
  const app::FluxCond cond{f->inputs.at("encoder_hidden_states"), f->inputs.at("pooled_projections"),
                           f->inputs.at("txt_ids")};
  const auto schedule = dit::sampling::flux_schedule(2, 24, dit::sampling::SchedulerConfig::flux_dev());
  rt::Context ctx;
  app::DenoiseOptions plain;
  plain.guidance = 3.5f;
  int calls = 0;
  plain.progress = [&](int i, int n) { CHECK((i == ++calls && n == 2)); };
  const rt::Tensor a = app::denoise(ctx, *model, f->inputs.at("latents"), cond, f->inputs.at("img_ids"), schedule, plain);
  CHECK(calls == 2);
  app::DenoiseOptions cfg_opts;
  cfg_opts.guidance = 3.5f;
  cfg_opts.negative = &cond;
  cfg_opts.true_cfg_scale = 4.f;
  const rt::Tensor b =
      app::denoise(ctx, *model, f->inputs.at("latents"), cond, f->inputs.at("img_ids"), schedule, cfg_opts);
  CHECK(test::compare(b, a).rel_l2 <= 1e-6);
}
