// CLIP text tower: every clip_text_encoder parity fixture (legacy and explicit EOS pooling), the
// "text_model." prefix and the ignored heads of CLIPModel files, config parsing, and strict loading.
#include "app/parity/fixture.h"
#include "harness/fixtures.h"
#include "text_encoder/clip/model.h"
// Catch2's CHECK replaces runtime/base/check.h's, so Catch is included last.
#include <catch2/catch.hpp>

// The fixture's weights under `prefix`, without `drop`, plus `extra` tensors (filled with 0.5).
static weights::TensorStore rewrite(const weights::TensorStore& src, const std::string& prefix, const std::string& drop,
                                    const std::vector<std::pair<std::string, rt::Shape>>& extra = {}) {
  std::vector<test::StTensor> ts;
  for (const auto& [name, shape] : extra)
    ts.push_back(test::st_f32(name, shape, std::vector<float>(size_t(rt::shape_numel(shape)), 0.5f)));
  return test::rewritten(src, drop, ts, prefix);
}

TEST_CASE("clip_text_encoder parity fixtures", "[clip]") { test::check_parity_fixtures("clip_text_encoder"); }

TEST_CASE("clip reads a full CLIPModel-style file with the text_model. prefix", "[clip]") {
  const auto files = test::parity_fixtures("clip_text_encoder");
  REQUIRE(!files.empty());
  const app::ParityFixture f = test::load_fixture(files.front());
  const int64_t C = f.config.at("hidden_size").get<int64_t>();
  const weights::TensorStore store = rewrite(f.weights, "text_model.", "",
                                             {{"text_model.embeddings.position_ids", {1, 16}},
                                              {"text_projection.weight", {C, C}},
                                              {"logit_scale", {}},
                                              {"visual_projection.weight", {C, C}},
                                              {"vision_model.post_layernorm.weight", {C}},
                                              {"vision_model.encoder.layers.0.mlp.fc1.bias", {C}}});
  auto cfg = te::clip::Config::from_transformers_json({{"text_config", f.config}});
  REQUIRE(cfg.is_ok());
  CHECK(cfg->eos_token_id == f.config.at("eos_token_id").get<int64_t>());
  auto model = te::clip::ClipTextEncoder::from_store(store, *cfg);
  INFO(model.status().message());
  REQUIRE(model.is_ok());
  rt::Context ctx;
  const te::clip::ClipTextOutput out = model->forward(ctx, f.inputs.at("input_ids"));
  test::check_outputs_match(f, {{"last_hidden_state", out.last_hidden_state}, {"pooler_output", out.pooler_output}});
}

TEST_CASE("clip config from shapes agrees with the fixture config", "[clip]") {
  for (const auto& path : test::parity_fixtures("clip_text_encoder")) {
    const app::ParityFixture f = test::load_fixture(path);
    auto mapped = weights::MappedStore::create(f.weights, te::clip::name_map(f.weights));
    REQUIRE(mapped.is_ok());
    auto inferred = te::clip::Config::from_checkpoint(**mapped);
    INFO(inferred.status().message());
    REQUIRE(inferred.is_ok());
    auto json = te::clip::Config::from_transformers_json(f.config);
    REQUIRE(json.is_ok());
    CHECK(inferred->hidden_size == json->hidden_size);
    CHECK(inferred->intermediate_size == json->intermediate_size);
    CHECK(inferred->num_hidden_layers == json->num_hidden_layers);
    CHECK(inferred->vocab_size == json->vocab_size);
    CHECK(inferred->max_position_embeddings == json->max_position_embeddings);
  }
  const te::clip::Config l = te::clip::Config::clip_vit_large_patch14();
  CHECK(l.validate().is_ok());
  CHECK(l.head_dim() == 64);
}

TEST_CASE("clip pooling positions follow transformers' eos rule", "[clip]") {
  const auto files = test::parity_fixtures("clip_text_encoder");
  REQUIRE(!files.empty());
  const app::ParityFixture f = test::load_fixture(files.front());
  auto cfg = te::clip::Config::from_transformers_json(f.config);
  REQUIRE(cfg.is_ok());
  const rt::Tensor ids = rt::Tensor::from_vector_i64({0, 5, 99, 7, 99, 9,  0, 5, 7, 9, 3, 9,  0, 97, 98, 97, 1, 2}, {3, 6});
  cfg->eos_token_id = 2;  // legacy: first position of the largest id
  auto legacy = te::clip::ClipTextEncoder::from_store(f.weights, *cfg);
  REQUIRE(legacy.is_ok());
  CHECK(legacy->eos_positions(ids) == std::vector<int64_t>{2, 3, 2});
  cfg->eos_token_id = 97;  // first position holding the id; none -> 0
  auto explicit_eos = te::clip::ClipTextEncoder::from_store(f.weights, *cfg);
  REQUIRE(explicit_eos.is_ok());
  CHECK(explicit_eos->eos_positions(ids) == std::vector<int64_t>{0, 0, 1});
}

TEST_CASE("clip reports a missing tensor by name", "[clip]") {
  const auto files = test::parity_fixtures("clip_text_encoder");
  REQUIRE(!files.empty());
  const app::ParityFixture f = test::load_fixture(files.front());
  const std::string gone = "encoder.layers.1.self_attn.v_proj.bias";
  REQUIRE(f.weights.has(gone));
  auto cfg = te::clip::Config::from_transformers_json(f.config);
  REQUIRE(cfg.is_ok());
  auto model = te::clip::ClipTextEncoder::from_store(rewrite(f.weights, "text_model.", gone), *cfg);
  REQUIRE(!model.is_ok());
  INFO(model.status().message());
  CHECK(model.status().message().find("missing") != std::string::npos);
  CHECK(model.status().message().find(gone) != std::string::npos);
}
