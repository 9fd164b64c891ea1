// T5 encoder: every t5_encoder parity fixture, the relative-position buckets against torch's, config
// from shapes, the tied-embedding / full-model name handling, and strict loading.
#include <algorithm>
#include <filesystem>

#include "app/parity/fixture.h"
#include "harness/compare.h"
#include "harness/safetensors_writer.h"
#include "text_encoder/t5/model.h"
// Catch2's CHECK replaces runtime/base/check.h's, so Catch is included last.
#include <catch2/catch.hpp>

namespace fs = std::filesystem;

static std::vector<std::string> t5_fixtures() {
  std::vector<std::string> out;
  const fs::path dir = fs::path(DITRUN_FIXTURES_DIR) / "parity";
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("t5_encoder", 0) == 0 && e.path().extension() == ".safetensors") out.push_back(e.path().string());
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

// The fixture's weights, renamed / filtered / extended, written to a fresh file and reopened.
static weights::TensorStore rewrite(const weights::TensorStore& src, const std::string& drop,
                                    const std::vector<std::pair<std::string, std::string>>& copies = {}) {
  std::vector<test::StTensor> ts;
  for (const auto& n : src.names())
    if (n != drop) ts.push_back(test::st_from_tensor(n, src.load_f32(n)));
  for (const auto& [from, to] : copies) ts.push_back(test::st_from_tensor(to, src.load_f32(from)));
  const std::string path = test::make_temp_dir("t5") + "/w.safetensors";
  test::write_safetensors(path, ts);
  auto store = weights::TensorStore::open(path);
  REQUIRE(store.is_ok());
  return std::move(store).value();
}

TEST_CASE("t5_encoder parity fixtures", "[t5]") {
  const auto files = t5_fixtures();
  REQUIRE(!files.empty());
  rt::Context ctx;
  for (const auto& path : files) {
    const app::ParityFixture f = load_fixture(path);
    REQUIRE(f.module == "t5_encoder");
    auto out = (*app::find_parity_runner(f.module))(ctx, f);
    INFO(path << ": " << out.status().message());
    REQUIRE(out.is_ok());
    for (const auto& [name, want] : f.expected) {
      REQUIRE(out->count(name) == 1);
      const test::Diff d = test::compare(out->at(name), want);
      INFO(path << " output " << name << ": " << d.str());
      CHECK(!d.nan_mismatch);
      REQUIRE(d.rel_l2 <= f.tolerance);
    }
  }
}

TEST_CASE("t5 relative_position_bucket matches transformers", "[t5]") {
  // torch: T5Attention._relative_position_bucket(tensor(ns), True, 32, 128), transformers 5.24.0.
  const std::vector<int64_t> ns = {0, 1, -1, 7, -7, 8, -8, 11, -12, 15, 16, -16, 31, 32, 64, -100, 127, 128, -128, 200, -5000};
  const std::vector<int64_t> want = {0, 17, 1, 23, 7, 24, 8, 24, 9, 25, 26, 10, 27, 28, 30, 15, 31, 31, 15, 31, 15};
  for (size_t i = 0; i < ns.size(); ++i) {
    INFO("relative position " << ns[i]);
    CHECK(te::t5::relative_position_bucket(ns[i], 32, 128) == want[i]);
  }
}

TEST_CASE("t5 config from shapes agrees with the fixture config", "[t5]") {
  for (const auto& path : t5_fixtures()) {
    const app::ParityFixture f = load_fixture(path);
    auto mapped = weights::MappedStore::create(f.weights, te::t5::name_map(f.weights));
    REQUIRE(mapped.is_ok());
    auto inferred = te::t5::Config::from_checkpoint(**mapped);
    INFO(inferred.status().message());
    REQUIRE(inferred.is_ok());
    auto json = te::t5::Config::from_transformers_json(f.config);
    REQUIRE(json.is_ok());
    CHECK(inferred->str() == json->str());
  }
}

TEST_CASE("t5 config defaults, preset and unsupported activation", "[t5]") {
  auto d = te::t5::Config::from_transformers_json({{"feed_forward_proj", "gated-gelu"}});
  REQUIRE(d.is_ok());
  CHECK(d->d_model == 512);  // transformers' default when the key is absent
  CHECK(*d->activation() == te::t5::Activation::GeluTanh);
  CHECK(te::t5::Config::t5_v1_1_xxl().validate().is_ok());
  auto relu = te::t5::Config::from_transformers_json(nlohmann::json::object());  // default "relu"
  REQUIRE(!relu.is_ok());
  CHECK(relu.status().message().find("relu") != std::string::npos);
}

TEST_CASE("t5 reads a file with both embedding copies and a decoder", "[t5]") {
  const auto files = t5_fixtures();
  REQUIRE(!files.empty());
  const app::ParityFixture f = load_fixture(files.front());
  const std::string emb = f.weights.has("shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight";
  const std::string other = emb == "shared.weight" ? "encoder.embed_tokens.weight" : "shared.weight";
  const weights::TensorStore store =
      rewrite(f.weights, "", {{emb, other}, {emb, "decoder.embed_tokens.weight"}, {emb, "lm_head.weight"},
                              {"encoder.final_layer_norm.weight", "decoder.final_layer_norm.weight"}});
  auto cfg = te::t5::Config::from_transformers_json(f.config);
  REQUIRE(cfg.is_ok());
  auto model = te::t5::T5Encoder::from_store(store, *cfg);
  INFO(model.status().message());
  REQUIRE(model.is_ok());
  rt::Context ctx;
  const test::Diff d = test::compare(model->forward(ctx, f.inputs.at("input_ids")), f.expected.at("last_hidden_state"));
  INFO(d.str());
  CHECK(d.rel_l2 <= f.tolerance);
}

TEST_CASE("t5 reports a missing tensor by name", "[t5]") {
  const auto files = t5_fixtures();
  REQUIRE(!files.empty());
  const app::ParityFixture f = load_fixture(files.front());
  const std::string gone = "encoder.block.1.layer.1.DenseReluDense.wo.weight";
  REQUIRE(f.weights.has(gone));
  auto cfg = te::t5::Config::from_transformers_json(f.config);
  REQUIRE(cfg.is_ok());
  auto model = te::t5::T5Encoder::from_store(rewrite(f.weights, gone), *cfg);
  REQUIRE(!model.is_ok());
  INFO(model.status().message());
  CHECK(model.status().message().find("missing") != std::string::npos);
  CHECK(model.status().message().find(gone) != std::string::npos);
}
