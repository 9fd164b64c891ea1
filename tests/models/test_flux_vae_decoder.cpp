// Flux autoencoder decoder: every flux_vae_decoder parity fixture (BFL and diffusers layouts), config
// inference from shapes, layout detection, and strict loading (missing / unexpected tensors).
#include "app/parity/fixture.h"
#include "harness/fixtures.h"
#include "vae/flux/decoder.h"
#include "vae/flux/names.h"
// Catch2's CHECK replaces runtime/base/check.h's, so Catch is included last.
#include <catch2/catch.hpp>

TEST_CASE("flux_vae_decoder parity fixtures", "[vae]") { test::check_parity_fixtures("flux_vae_decoder"); }

TEST_CASE("flux_vae_decoder config from shapes and layout detection", "[vae]") {
  for (const auto& path : test::parity_fixtures("flux_vae_decoder")) {
    const app::ParityFixture f = test::load_fixture(path);
    auto layout = vae::flux::detect_vae_layout(f.weights);
    REQUIRE(layout.is_ok());
    CHECK(vae::flux::layout_name(*layout) == f.weights_format);
    auto store = vae::flux::map_vae_store(f.weights);
    INFO(path << ": " << store.status().message());
    REQUIRE(store.is_ok());
    auto from_json = vae::flux::Config::from_diffusers_json(f.config);
    REQUIRE(from_json.is_ok());
    // The group count is not in the shapes: it comes from the base config.
    auto inferred = vae::flux::Config::from_checkpoint(**store, *from_json);
    INFO(inferred.status().message());
    REQUIRE(inferred.is_ok());
    CHECK(inferred->block_out_channels == from_json->block_out_channels);
    CHECK(inferred->layers_per_block == from_json->layers_per_block);
    CHECK(inferred->latent_channels == from_json->latent_channels);
    CHECK(inferred->out_channels == from_json->out_channels);
    CHECK(inferred->use_post_quant_conv == from_json->use_post_quant_conv);
    CHECK(inferred->mid_block_add_attention == from_json->mid_block_add_attention);
  }
}

TEST_CASE("flux_vae_decoder diffusers defaults and flux1 preset", "[vae]") {
  auto d = vae::flux::Config::from_diffusers_json(nlohmann::json::object());
  REQUIRE(d.is_ok());
  CHECK(d->block_out_channels == std::vector<int64_t>{64});
  CHECK(d->layers_per_block == 1);
  CHECK(d->latent_channels == 4);
  CHECK(d->use_post_quant_conv);
  CHECK(d->shift_factor == 0.f);
  const auto flux = vae::flux::Config::flux1();
  CHECK(flux.upscale() == 8);
  CHECK(flux.mid_channels() == 512);
  auto bad = vae::flux::Config::from_diffusers_json({{"up_block_types", {"AttnUpDecoderBlock2D"}}});
  REQUIRE_FALSE(bad.is_ok());
  CHECK(bad.status().message().find("AttnUpDecoderBlock2D") != std::string::npos);
}

// Rewrites a fixture's weights without `drop` and with `extra`, then loads them as a checkpoint.
static rt::Status load_modified(const app::ParityFixture& f, const std::string& drop, const std::string& extra) {
  std::vector<test::StTensor> added;
  if (!extra.empty()) added.push_back(test::st_f32(extra, {2}, {1.f, 2.f}));
  auto mapped = vae::flux::map_vae_store(test::rewritten(f.weights, drop, added));
  if (!mapped.is_ok()) return mapped.status();
  auto cfg = vae::flux::Config::from_diffusers_json(f.config);
  REQUIRE(cfg.is_ok());
  auto dec = vae::flux::Decoder::load(weights::WeightLoader(*mapped, "vae"), *cfg);
  return dec.status();
}

TEST_CASE("flux_vae_decoder strict loading", "[vae]") {
  for (const auto& path : test::parity_fixtures("flux_vae_decoder")) {
    const app::ParityFixture f = test::load_fixture(path);
    const bool bfl = f.weights_format == "bfl";
    const std::string dropped = bfl ? "decoder.up.1.block.2.norm2.weight" : "decoder.up_blocks.2.resnets.2.norm2.weight";
    SECTION("missing tensor: " + path) {
      const rt::Status st = load_modified(f, dropped, "");
      INFO(st.message());
      REQUIRE_FALSE(st.is_ok());
      CHECK(st.message().find("decoder.up.1.block.2.norm2.weight") != std::string::npos);
    }
    SECTION("unexpected tensor: " + path) {
      const rt::Status st = load_modified(f, "", "decoder.extra_norm.weight");
      INFO(st.message());
      REQUIRE_FALSE(st.is_ok());
      CHECK(st.message().find("decoder.extra_norm.weight") != std::string::npos);
    }
    SECTION("encoder tensors are ignored: " + path) {
      const rt::Status st = load_modified(f, "", bfl ? "encoder.down.0.block.1.norm1.bias" : "encoder.down_blocks.0.resnets.1.norm1.bias");
      INFO(st.message());
      CHECK(st.is_ok());
    }
  }
}

TEST_CASE("flux_vae_decoder layout detection rejects other families", "[vae]") {
  const std::string dir = test::make_temp_dir("vae_detect");
  test::write_safetensors(dir + "/dit.safetensors", {test::st_f32("double_blocks.0.img_attn.qkv.weight", {2}, {0, 0})});
  auto store = weights::TensorStore::open(dir + "/dit.safetensors");
  REQUIRE(store.is_ok());
  auto layout = vae::flux::detect_vae_layout(*store);
  REQUIRE_FALSE(layout.is_ok());
  CHECK(layout.status().message().find("diffusion transformer") != std::string::npos);
}

TEST_CASE("flux_vae_decoder unscale_latents", "[vae]") {
  rt::Context ctx;
  const auto cfg = vae::flux::Config::flux1();
  const rt::Tensor z = rt::Tensor::from_vector({0.f, 0.3611f}, {2});
  const auto v = vae::flux::unscale_latents(ctx, z, cfg).to_vector();
  CHECK(v[0] == Approx(0.1159f));
  CHECK(v[1] == Approx(1.1159f));
}
