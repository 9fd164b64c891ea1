// safetensors reader and TensorStore: round trips of every dtype we read, each class of malformed
// header, and sharded / directory checkpoints.
#include <cmath>
#include <filesystem>

#include "harness/safetensors_writer.h"
#include "weights/store.h"
// Catch2's CHECK replaces runtime/base/check.h's, so Catch is included last.
#include <catch2/catch.hpp>

using namespace test;
using weights::SafetensorsFile;
using weights::TensorStore;

static rt::Result<weights::SafetensorsHeader> parse(const std::string& image) {
  return weights::parse_safetensors_header(reinterpret_cast<const uint8_t*>(image.data()), image.size());
}

// The error message must mention every fragment (what failed, and the values involved).
static void require_error(const rt::Status& st, std::initializer_list<const char*> fragments) {
  INFO("message: " << st.message());
  REQUIRE_FALSE(st.is_ok());
  for (const char* f : fragments) CHECK(st.message().find(f) != std::string::npos);
}

static std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                         const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

// A JSON object of the given "key": value entries.
static std::string obj(const std::vector<std::string>& entries) {
  std::string s = "{";
  for (size_t i = 0; i < entries.size(); ++i) s.append(i ? "," : "").append(entries[i]);
  return s.append("}");
}

TEST_CASE("safetensors round trip of every dtype", "[weights]") {
  const std::string dir = make_temp_dir("st_roundtrip");
  const std::string path = dir + "/model.safetensors";
  write_safetensors(path,
                    {st_f32("a.f32", {2, 3}, {1, -2, 3.5f, 0, 1e-3f, -7}),
                     st_bf16("b.bf16", {3}, {1.0f, -0.5f, 3.0f}),
                     st_f16("c.f16", {2, 2}, {0.25f, -1.5f, 65504.0f, 6e-8f}),
                     st_raw("d.f8", "F8_E4M3", {5}, {0x38, 0xC0, 0x7E, 0x01, 0x7F}),
                     st_i64("e.i64", {2}, {-5, int64_t(1) << 40}), st_f32("f.empty", {0, 4}, {})},
                    {{"format", "pt"}, {"origin", "test"}});

  auto r = TensorStore::open(path);
  REQUIRE(r.is_ok());
  TensorStore& s = *r;
  CHECK(s.size() == 6);
  CHECK(s.names() == std::vector<std::string>{"a.f32", "b.bf16", "c.f16", "d.f8", "e.i64", "f.empty"});
  CHECK(s.metadata().at("origin") == "test");

  CHECK(s.info("a.f32").dtype == rt::DType::F32);
  CHECK(s.load("a.f32").shape() == rt::Shape{2, 3});
  CHECK(s.load_f32("a.f32").to_vector() == std::vector<float>{1, -2, 3.5f, 0, 1e-3f, -7});
  CHECK(s.load("b.bf16").dtype() == rt::DType::BF16);
  CHECK(s.load_f32("b.bf16").to_vector() == std::vector<float>{1.0f, -0.5f, 3.0f});
  const auto c = s.load_f32("c.f16").to_vector();
  CHECK(c[0] == 0.25f);
  CHECK(c[1] == -1.5f);
  CHECK(c[2] == 65504.0f);
  CHECK(c[3] == Approx(5.96e-8).epsilon(0.01));  // f16 subnormal 2^-24
  CHECK(s.load("e.i64").to_vector_i64() == std::vector<int64_t>{-5, int64_t(1) << 40});
  CHECK(s.load_f32("f.empty").numel() == 0);

  // OCP E4M3 (fn): 0x38 = 1.0, 0xC0 = -2.0, 0x7E = 448 (max finite), 0x01 = 2^-9 (min subnormal), 0x7F = NaN.
  const auto f8 = s.load_f32("d.f8").to_vector();
  CHECK(f8[0] == 1.0f);
  CHECK(f8[1] == -2.0f);
  CHECK(f8[2] == 448.0f);
  CHECK(f8[3] == std::ldexp(1.0f, -9));
  CHECK(std::isnan(f8[4]));

  // load_f32 copies even for f32 storage: the result must be writable, unlike the read-only mapping.
  rt::Tensor w = s.load_f32("a.f32");
  w.data<float>()[0] = 42;
  CHECK(s.load_f32("a.f32").to_vector()[0] == 1.0f);
}

TEST_CASE("safetensors views keep the mapping alive", "[weights]") {
  const std::string path = make_temp_dir("st_alive") + "/m.safetensors";
  write_safetensors(path, {st_f32("x", {2}, {3, 4})});
  rt::Tensor t;
  {
    auto f = SafetensorsFile::open(path);
    REQUIRE(f.is_ok());
    t = (*f)->view((*f)->header().tensors[0]);
  }
  CHECK(t.to_vector() == std::vector<float>{3, 4});
}

TEST_CASE("safetensors rejects truncated and oversized files", "[weights]") {
  const std::string dir = make_temp_dir("st_trunc");
  const std::string good = serialize_safetensors({st_f32("w", {4, 4}, std::vector<float>(16, 1.0f))});

  SECTION("tensor data cut short") {
    write_file(dir + "/model.safetensors", good.substr(0, good.size() - 10));
    auto r = TensorStore::open(dir + "/model.safetensors");
    require_error(r.status(), {"model.safetensors", "header claims 64 bytes of tensor data", "only 54", "truncated"});
  }
  SECTION("shorter than the length prefix") {
    require_error(parse(good.substr(0, 5)).status(), {"5 bytes", "too small"});
    write_file(dir + "/tiny.safetensors", "abc");
    require_error(SafetensorsFile::open(dir + "/tiny.safetensors").status(), {"tiny.safetensors", "too small"});
  }
  SECTION("header length larger than the file") {
    std::string img = good;
    img[0] = char(0xff);
    img[1] = char(0x10);
    require_error(parse(img).status(), {"header length prefix says 4351 bytes", "truncated"});
  }
  SECTION("header length above 100 MB") {
    std::string img = safetensors_image("{}");
    img[3] = 0x10;  // 0x10000000 + 2 bytes
    require_error(parse(img).status(), {"exceeds", "limit"});
  }
  SECTION("header length below 2") {
    require_error(parse(safetensors_image("{")).status(), {"header length is 1"});
  }
}

TEST_CASE("safetensors rejects malformed headers", "[weights]") {
  const std::string data(64, '\0');
  auto img = [&](const std::string& json) { return parse(safetensors_image(json, data)); };

  SECTION("empty header is valid") { CHECK(img("{}").is_ok()); }
  SECTION("invalid JSON") { require_error(img("{\"a\": ").status(), {"not valid JSON"}); }
  SECTION("not an object") { require_error(img("[1, 2]").status(), {"must be a JSON object", "array"}); }
  SECTION("non-object entry") { require_error(img("{\"w\": 3}").status(), {"'w'", "expected a JSON object", "number"}); }
  SECTION("missing dtype") {
    require_error(img("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}").status(), {"'w'", "dtype"});
  }
  SECTION("unsupported dtype") {
    require_error(img(obj({entry("w", "F64", "[1]", "[0,8]")})).status(),
                  {"unsupported dtype F64 for tensor 'w'", "ditrun reads F32, F16, BF16, F8_E4M3, I64"});
    require_error(img(obj({entry("m", "BOOL", "[1]", "[0,1]")})).status(), {"unsupported dtype BOOL"});
  }
  SECTION("unknown dtype") { require_error(img(obj({entry("w", "Q4", "[1]", "[0,1]")})).status(), {"unknown dtype 'Q4'"}); }
  SECTION("negative shape") {
    require_error(img(obj({entry("w", "F32", "[2,-1]", "[0,8]")})).status(), {"'w'", "non-negative", "-1"});
  }
  SECTION("float shape") { require_error(img(obj({entry("w", "F32", "[2.5]", "[0,8]")})).status(), {"non-negative"}); }
  SECTION("numel overflow") {
    require_error(img(obj({entry("w", "F32", "[4294967296,4294967296,16]", "[0,8]")})).status(), {"overflows"});
  }
  SECTION("offsets out of range") {
    require_error(img(obj({entry("w", "F32", "[20]", "[0,80]")})).status(), {"claims 80 bytes", "only 64", "'w'"});
  }
  SECTION("begin after end") { require_error(img(obj({entry("w", "F32", "[1]", "[8,4]")})).status(), {"begin 8 > end 4"}); }
  SECTION("offsets malformed") {
    require_error(img(obj({entry("w", "F32", "[1]", "[0]")})).status(), {"data_offsets"});
    require_error(img(obj({entry("w", "F32", "[1]", "[0,-4]")})).status(), {"data_offsets"});
  }
  SECTION("size differs from shape x dtype") {
    require_error(img(obj({entry("w", "BF16", "[3,2]", "[0,16]")})).status(), {"'w'", "16 bytes", "needs 12"});
  }
  SECTION("overlapping tensors") {
    const std::string h = obj({entry("a", "F32", "[4]", "[0,16]"), entry("b", "F32", "[4]", "[8,24]")});
    require_error(img(h).status(), {"'a'", "'b'", "overlap"});
  }
  SECTION("zero-sized tensors overlap nothing") {
    const std::string h = obj({entry("a", "F32", "[4]", "[0,16]"), entry("z", "F32", "[0]", "[8,8]")});
    CHECK(img(h).is_ok());
  }
  SECTION("metadata must map strings to strings") {
    require_error(img("{\"__metadata__\":{\"epochs\":3}}").status(), {"__metadata__", "'epochs'", "number"});
    require_error(img("{\"__metadata__\":[]}").status(), {"__metadata__", "object"});
    auto ok = img("{\"__metadata__\":{\"format\":\"pt\"}}   ");
    REQUIRE(ok.is_ok());
    CHECK(ok->metadata.at("format") == "pt");
  }
}

TEST_CASE("sharded checkpoints through an index", "[weights]") {
  const std::string dir = make_temp_dir("st_shards");
  write_safetensors(dir + "/model-00001-of-00002.safetensors", {st_f32("a", {2}, {1, 2}), st_f32("b", {1}, {3})});
  write_safetensors(dir + "/model-00002-of-00002.safetensors", {st_bf16("c", {2}, {4, 5})});
  const std::string index =
      R"({"metadata": {"total_size": 16}, "weight_map": {"a": "model-00001-of-00002.safetensors",
          "b": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}})";
  write_file(dir + "/model.safetensors.index.json", index);

  SECTION("index file") {
    auto r = TensorStore::open(dir + "/model.safetensors.index.json");
    REQUIRE(r.is_ok());
    CHECK(r->names() == std::vector<std::string>{"a", "b", "c"});
    CHECK(r->load_f32("c").to_vector() == std::vector<float>{4, 5});
    CHECK(r->source() == dir + "/model.safetensors.index.json");
  }
  SECTION("directory with an index") {
    auto r = TensorStore::open(dir);
    REQUIRE(r.is_ok());
    CHECK(r->size() == 3);
  }
  SECTION("index naming a tensor its shard lacks") {
    write_file(dir + "/model.safetensors.index.json",
               R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "zz": "model-00002-of-00002.safetensors"}})");
    require_error(TensorStore::open(dir).status(), {"1 tensors its shards do not contain", "zz (in model-00002-of-00002"});
  }
  SECTION("index naming a missing shard") {
    write_file(dir + "/model.safetensors.index.json", R"({"weight_map": {"a": "nope.safetensors"}})");
    require_error(TensorStore::open(dir).status(), {"nope.safetensors", "cannot open"});
  }
  SECTION("index without weight_map") {
    write_file(dir + "/model.safetensors.index.json", R"({"metadata": {}})");
    require_error(TensorStore::open(dir).status(), {"weight_map"});
  }
}

TEST_CASE("directories of safetensors files and duplicate names", "[weights]") {
  const std::string dir = make_temp_dir("st_dir");
  write_safetensors(dir + "/b.safetensors", {st_f32("y", {1}, {2})});
  write_safetensors(dir + "/a.safetensors", {st_f32("x", {1}, {1})});
  auto r = TensorStore::open(dir);
  REQUIRE(r.is_ok());
  CHECK(r->names() == std::vector<std::string>{"x", "y"});

  write_safetensors(dir + "/c.safetensors", {st_f32("x", {1}, {9})});
  require_error(TensorStore::open(dir).status(), {"1 tensor names appear in more than one file", "x (", "a.safetensors",
                                                  "c.safetensors"});

  const std::string empty = make_temp_dir("st_empty");
  require_error(TensorStore::open(empty).status(), {"no *.safetensors"});
  require_error(TensorStore::open(empty + "/nothing.safetensors").status(), {"no such file"});
}

TEST_CASE("with_prefix selects and strips", "[weights]") {
  const std::string path = make_temp_dir("st_prefix") + "/m.safetensors";
  write_safetensors(path, {st_f32("weight.a", {1}, {1}), st_f32("weight.b", {1}, {2}), st_f32("input.x", {1}, {3})});
  auto r = TensorStore::open(path);
  REQUIRE(r.is_ok());
  const TensorStore w = r->with_prefix("weight.");
  CHECK(w.names() == std::vector<std::string>{"a", "b"});
  CHECK(w.load_f32("b").to_vector() == std::vector<float>{2});
}
