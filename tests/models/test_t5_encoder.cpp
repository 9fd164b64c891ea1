// T5 encoder: every t5_encoder parity fixture, the relative-position buckets against torch's, config
// from shapes, the tied-embedding / full-model name handling, and strict loading.
#include "app/parity/fixture.h"
#include "harness/compare.h"
#include "harness/fixtures.h"
#include "text_encoder/t5/model.h"
// Catch2's CHECK replaces runtime/base/check.h's, so Catch is included last.
#include <catch2/catch.hpp>

// The fixture's weights without `drop`, plus copies of tensors under other names (from -> to).
static weights::TensorStore rewrite(const weights::TensorStore& src, const std::string& drop,
                                    const std::vector<std::pair<std::string, std::string>>& copies = {}) {
  std::vector<test::StTensor> ts;
  for (const auto& [from, to] : copies) ts.push_back(test::st_from_tensor(to, src.load_f32(from)));
  return test::rewritten(src, drop, ts);
}

TEST_CASE("t5_encoder parity fixtures", "[t5]") { test::check_parity_fixtures("t5_encoder"); }

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
  for (const auto& path : test::parity_fixtures("t5_encoder")) {
    const app::ParityFixture f = test::load_fixture(path);
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
  const auto files = test::parity_fixtures("t5_encoder");
  REQUIRE(!files.empty());
  const app::ParityFixture f = test::load_fixture(files.front());
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
  const auto files = test::parity_fixtures("t5_encoder");
  REQUIRE(!files.empty());
  const app::ParityFixture f = test::load_fixture(files.front());
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
