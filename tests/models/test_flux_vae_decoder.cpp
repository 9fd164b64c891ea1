// Flux autoencoder decoder: every flux_vae_decoder parity fixture (BFL and diffusers layouts), config
// inference from shapes, layout detection, and strict loading (missing / unexpected tensors).
#include <algorithm>
#include <filesystem>

#include "app/parity/fixture.h"
#include "harness/compare.h"
#include "harness/safetensors_writer.h"
#include "vae/flux/decoder.h"
#include "vae/flux/names.h"
// Catch2's CHECK replaces runtime/base/check.h's, so Catch is included last.
#include <catch2/catch.hpp>

namespace fs = std::filesystem;

static std::vector<std::string> vae_fixtures() {
  std::vector<std::string> out;
  const fs::path dir = fs::path(DITRUN_FIXTURES_DIR) / "parity";
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("flux_vae_decoder", 0) == 0 && e.path().extension() == ".safetensors") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

static app::ParityFixture load_fixture(const std::string& path) {
  auto f = app::load_parity_fixture(path);
  INFO(f.status().message());
  REQUIRE(f.is_ok());
  return std::move(f).value();
}

TEST_CASE("flux_vae_decoder parity fixtures", "[vae]") {
  const auto files = vae_fixtures();
  REQUIRE(!files.empty());
  rt::Context ctx;
  for (const auto& path : files) {
    const app::ParityFixture f = load_fixture(path);
    REQUIRE(f.module == "flux_vae_decoder");
    const app::ParityRunner* run = app::find_parity_runner(f.module);
    REQUIRE(run != nullptr);
    auto out = (*run)(ctx, f);
    INFO(path << ": " << out.status().message());
    REQUIRE(out.is_ok());
    for (const auto& [name, want] : f.expected) {
      REQUIRE(out->count(name) == 1);
      const test::Diff d = test::compare(out->at(name), want);
      INFO(path << " output " << name << ": " << d.str());
      CHECK(!d.nan_mismatch);
      CHECK(d.rel_l2 <= f.tolerance);
    }
  }
}

TEST_CASE("flux_vae_decoder config from shapes and layout detection", "[vae]") {
  for (const auto& path : vae_fixtures()) {
    const app::ParityFixture f = load_fixture(path);
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
  std::vector<test::StTensor> tensors;
  for (const auto& name : f.weights.names()) {
    if (name != drop) tensors.push_back(test::st_from_tensor(name, f.weights.load_f32(name)));
  }
  if (!extra.empty()) tensors.push_back(test::st_f32(extra, {2}, {1.f, 2.f}));
  const std::string path = test::make_temp_dir("vae") + "/vae.safetensors";
  test::write_safetensors(path, tensors);
  auto store = weights::TensorStore::open(path);
  REQUIRE(store.is_ok());
  auto mapped = vae::flux::map_vae_store(std::move(store).value());
  if (!mapped.is_ok()) return mapped.status();
  auto cfg = vae::flux::Config::from_diffusers_json(f.config);
  REQUIRE(cfg.is_ok());
  auto dec = vae::flux::Decoder::load(weights::WeightLoader(*mapped, "vae"), *cfg);
  return dec.status();
}

TEST_CASE("flux_vae_decoder strict loading", "[vae]") {
  for (const auto& path : vae_fixtures()) {
    const app::ParityFixture f = load_fixture(path);
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
