// Name maps (patterns, transforms, prefix stripping, ignore, identity fallback, error cases) and the
// WeightLoader's single aggregated report.
#include <string>
#include <vector>

#include "harness/safetensors_writer.h"
#include "weights/name_map.h"
// Catch2's CHECK replaces runtime/base/check.h's, so Catch is included last.
#include <catch2/catch.hpp>

using namespace test;
using weights::MappedStore;
using weights::NameMap;
using weights::TensorStore;
using weights::WeightLoader;

static TensorStore store_of(const std::vector<StTensor>& tensors) {
  const std::string path = make_temp_dir("name_map") + "/m.safetensors";
  write_safetensors(path, tensors);
  auto r = TensorStore::open(path);
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

static std::shared_ptr<MappedStore> mapped(const std::vector<StTensor>& tensors, const NameMap& map) {
  auto r = MappedStore::create(store_of(tensors), map);
  INFO(r.status().message());
  REQUIRE(r.is_ok());
  return std::move(r).value();
}

static std::vector<float> iota(int n, float start = 0) {
  std::vector<float> v;
  for (int i = 0; i < n; ++i) v.push_back(start + float(i));
  return v;
}

static void require_error(const rt::Status& st, std::initializer_list<const char*> fragments) {
  INFO("message: " << st.message());
  REQUIRE_FALSE(st.is_ok());
  for (const char* f : fragments) CHECK(st.message().find(f) != std::string::npos);
}

TEST_CASE("match_pattern captures integers", "[weights]") {
  std::vector<std::string> caps;
  CHECK(weights::match_pattern("blocks.{i}.attn.{j}.w", "blocks.12.attn.3.w", &caps));
  CHECK(caps == std::vector<std::string>{"12", "3"});
  CHECK_FALSE(weights::match_pattern("blocks.{i}.w", "blocks..w", &caps));
  CHECK_FALSE(weights::match_pattern("blocks.{i}.w", "blocks.x.w", &caps));
  CHECK_FALSE(weights::match_pattern("blocks.{i}.w", "blocks.1.w.extra", &caps));
  CHECK(weights::match_pattern("up.{i}0", "up.120", &caps));  // backtracks over the digit run
  CHECK(caps == std::vector<std::string>{"12"});
  CHECK(weights::match_pattern("a.{i}.b.{i}", "a.4.b.4", &caps));
  CHECK_FALSE(weights::match_pattern("a.{i}.b.{i}", "a.4.b.5", &caps));
  CHECK(weights::match_pattern("plain.name", "plain.name", nullptr));
}

TEST_CASE("rename with captures, prefix strip, ignore", "[weights]") {
  NameMap m;
  m.strip_prefix("model.diffusion_model.")
      .rename("blocks.{i}.attn.to_q.weight", "double_blocks.{i}.q.weight")
      .ignore("text_projection.{i}.weight");
  auto ms = mapped({st_f32("model.diffusion_model.blocks.0.attn.to_q.weight", {2}, {1, 2}),
                    st_f32("blocks.7.attn.to_q.weight", {1}, {3}), st_f32("text_projection.0.weight", {1}, {0}),
                    st_f32("stray", {1}, {0})},
                   m);
  CHECK(ms->names() == std::vector<std::string>{"double_blocks.0.q.weight", "double_blocks.7.q.weight"});
  CHECK(ms->load_f32("double_blocks.0.q.weight").to_vector() == std::vector<float>{1, 2});
  CHECK(ms->unmatched_sources() == std::vector<std::string>{"stray"});
  CHECK(ms->stored_dtype("double_blocks.7.q.weight") == rt::DType::F32);
}

TEST_CASE("concat rows keeps source order", "[weights]") {
  NameMap m;
  m.concat_rows({"b.{i}.q", "b.{i}.k", "b.{i}.v"}, "blocks.{i}.qkv");
  auto ms = mapped({st_f32("b.0.v", {1, 2}, {50, 51}), st_f32("b.0.k", {2, 2}, iota(4, 20)),
                    st_bf16("b.0.q", {1, 2}, {1, 2})},
                   m);
  CHECK(ms->shape("blocks.0.qkv") == rt::Shape{4, 2});
  CHECK(ms->load_f32("blocks.0.qkv").to_vector() == std::vector<float>{1, 2, 20, 21, 22, 23, 50, 51});
  CHECK(ms->stored_dtype("blocks.0.qkv") == rt::DType::BF16);
  CHECK(ms->unmatched_sources().empty());  // k and v were consumed by the rule
}

TEST_CASE("concat rows with disagreeing trailing dims is an error", "[weights]") {
  NameMap m;
  m.concat_rows({"q", "k"}, "qkv");
  auto r = MappedStore::create(store_of({st_f32("q", {1, 2}, {1, 2}), st_f32("k", {1, 3}, {1, 2, 3})}), m);
  require_error(r.status(), {"qkv", "cannot concatenate", "[1, 2]", "[1, 3]"});
}

TEST_CASE("swap halves and reshape", "[weights]") {
  NameMap m;
  m.swap_halves("norm_out.linear.weight", "final_layer.adaLN_modulation.1.weight")
      .reshape("conv.weight", "proj.weight", {2, 3});
  auto ms = mapped({st_f32("norm_out.linear.weight", {4, 1}, {1, 2, 3, 4}), st_f32("conv.weight", {2, 3, 1, 1}, iota(6))}, m);
  CHECK(ms->load_f32("final_layer.adaLN_modulation.1.weight").to_vector() == std::vector<float>{3, 4, 1, 2});
  CHECK(ms->shape("final_layer.adaLN_modulation.1.weight") == rt::Shape{4, 1});
  CHECK(ms->shape("proj.weight") == rt::Shape{2, 3});
  const rt::Tensor p = ms->load_f32("proj.weight");
  CHECK(p.shape() == rt::Shape{2, 3});
  CHECK(p.to_vector() == iota(6));

  SECTION("odd dim 0 cannot swap") {
    auto r = MappedStore::create(store_of({st_f32("norm_out.linear.weight", {3}, {1, 2, 3})}), m);
    require_error(r.status(), {"swap halves", "[3]", "even"});
  }
  SECTION("reshape needs the same element count") {
    auto r = MappedStore::create(store_of({st_f32("conv.weight", {2, 2}, iota(4))}), m);
    require_error(r.status(), {"cannot reshape", "[2, 2]", "[2, 3]"});
  }
}

TEST_CASE("identity fallback maps unmatched names to themselves", "[weights]") {
  NameMap m;
  m.rename("old", "new").identity_fallback();
  auto ms = mapped({st_f32("old", {1}, {1}), st_f32("img_in.weight", {1}, {2})}, m);
  CHECK(ms->names() == std::vector<std::string>{"img_in.weight", "new"});
  CHECK(ms->unmatched_sources().empty());
}

TEST_CASE("partial multi-source sets are errors", "[weights]") {
  NameMap m;
  m.concat_rows({"b.{i}.q", "b.{i}.k", "b.{i}.v"}, "blocks.{i}.qkv");

  SECTION("first source present") {
    auto r = MappedStore::create(store_of({st_f32("b.3.q", {1}, {1}), st_f32("b.3.k", {1}, {1})}), m);
    require_error(r.status(), {"1 name-map problem", "b.{i}.q", "blocks.{i}.qkv", "found b.3.q but not b.3.v"});
  }
  SECTION("first source absent") {
    auto r = MappedStore::create(store_of({st_f32("b.3.k", {1}, {1}), st_f32("b.3.v", {1}, {1})}), m);
    require_error(r.status(), {"1 name-map problem", "but not b.3.q"});
  }
}

TEST_CASE("two rules producing one canonical name is an error", "[weights]") {
  NameMap m;
  m.rename("a.weight", "x.weight").rename("b.weight", "x.weight");
  auto r = MappedStore::create(store_of({st_f32("a.weight", {1}, {1}), st_f32("b.weight", {1}, {1})}), m);
  require_error(r.status(), {"two rules produce 'x.weight'", "a.weight", "b.weight"});

  NameMap strip;
  strip.strip_prefix("model.");
  auto r2 = MappedStore::create(store_of({st_f32("model.w", {1}, {1}), st_f32("w", {1}, {1})}), strip);
  require_error(r2.status(), {"'model.w' and 'w' both become 'w'"});
}

TEST_CASE("WeightLoader returns tensors and reports nothing when all match", "[weights]") {
  NameMap m;
  m.identity_fallback();
  auto ms = mapped({st_f32("blocks.0.w", {2}, {1, 2}), st_f32("blocks.0.b", {2}, {3, 4})}, m);
  WeightLoader wl(ms, "transformer");
  const WeightLoader blk = wl.pp("blocks", 0);
  CHECK(blk.get("w", {2}).to_vector() == std::vector<float>{1, 2});
  CHECK(blk.has("b"));
  CHECK(blk.shape_of("b") == rt::Shape{2});
  CHECK(blk.shape_of("nope").empty());
  CHECK(blk.get_optional("b", {2}).to_vector() == std::vector<float>{3, 4});
  CHECK_FALSE(blk.get_optional("bias2", {2}).defined());
  CHECK(wl.finish().is_ok());
}

TEST_CASE("WeightLoader aggregates missing, wrong shape and unexpected", "[weights]") {
  NameMap m;
  m.identity_fallback();
  std::vector<StTensor> ts = {st_f32("img_in.weight", {3, 8}, iota(24))};
  for (int i = 0; i < 7; ++i) ts.push_back(st_f32("extra." + std::to_string(i), {1}, {0}));
  WeightLoader wl(mapped(ts, m), "transformer");
  for (int i = 0; i < 2; ++i) {
    const rt::Tensor t = wl.pp("double_blocks", i).get("img_attn.qkv.weight", {6, 4});
    CHECK(t.shape() == rt::Shape{6, 4});  // a zero stand-in so construction can continue
  }
  const rt::Tensor w = wl.get("img_in.weight", {3, 4});
  CHECK(w.shape() == rt::Shape{3, 4});
  const rt::Status st = wl.finish();
  require_error(st, {"transformer: checkpoint does not match the model: 2 missing (double_blocks.0.img_attn.qkv.weight, "
                     "double_blocks.1.img_attn.qkv.weight)",
                     "1 wrong shape (img_in.weight: expected [3, 4], got [3, 8])",
                     "7 unexpected (extra.0, extra.1, extra.2, extra.3, extra.4, ...)"});
  CHECK(st.message().find("extra.5") == std::string::npos);  // at most 5 names per category
}

TEST_CASE("WeightLoader hints at an unknown prefix", "[weights]") {
  NameMap m;
  m.strip_prefix("model.diffusion_model.").identity_fallback();
  auto ms = mapped({st_f32("module.img_in.weight", {1}, {0}), st_f32("module.txt_in.weight", {1}, {0}),
                    st_f32("model.diffusion_model.time_in.weight", {1}, {0})},
                   m);
  WeightLoader wl(ms, "transformer");
  wl.get("img_in.weight", {1});
  wl.get("txt_in.weight", {1});
  wl.get("time_in.weight", {1});
  require_error(wl.finish(), {"2 missing", "2 unexpected", "unknown prefix 'module.'", "strip_prefix(\"module.\")"});
}

TEST_CASE("WeightLoader counts unmatched sources as unexpected and hints at another layout", "[weights]") {
  NameMap m;
  m.rename("x_embedder.weight", "img_in.weight");
  auto ms = mapped({st_f32("transformer_blocks.0.ff.net.0.proj.weight", {1}, {0})}, m);
  WeightLoader wl(ms, "transformer");
  wl.get("img_in.weight", {1});
  require_error(wl.finish(), {"1 missing (x_embedder.weight [img_in.weight])", "1 unexpected (transformer_blocks.0.ff.net.0.proj.weight)",
                              "none of the model's tensors were found"});
}
