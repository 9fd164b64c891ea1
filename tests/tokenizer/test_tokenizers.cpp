// Tokenizers against the ids transformers produced for tests/fixtures/tokenizers/cases.json
// (made by tools/make_tokenizer_fixtures.py).
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

#include "text_encoder/tokenizer/clip_text.h"
#include "text_encoder/tokenizer/clip_tokenizer.h"
#include "text_encoder/tokenizer/t5_tokenizer.h"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kDir = std::string(DITRUN_FIXTURES_DIR) + "/tokenizers";

json read_json(const std::string& path) {
  std::ifstream f(path);
  REQUIRE(f.good());
  return json::parse(f);
}

std::string show(const std::vector<int64_t>& ids) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < ids.size(); ++i) os << (i ? ", " : "") << ids[i];
  os << "]";
  return os.str();
}

// Exact equality, printing the text and both id vectors when they differ.
void check_ids(const std::string& what, const std::string& text, const std::vector<int64_t>& got, const json& want) {
  const auto expected = want.get<std::vector<int64_t>>();
  INFO(what << " text: " << json(text).dump());
  INFO("expected: " << show(expected));
  INFO("got:      " << show(got));
  CHECK(got == expected);
}

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("ditrun_tok_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("T5 tokenizer matches sentencepiece + </s> on every case", "[tokenizer]") {
  auto tok = te::T5Tokenizer::load(kDir + "/t5/spiece.model");
  REQUIRE(tok.is_ok());
  const json doc = read_json(kDir + "/cases.json");
  CHECK(tok->vocab_size() == doc["t5"]["vocab_size"].get<int>());
  CHECK(tok->pad_id() == 0);
  CHECK(tok->eos_id() == 1);
  CHECK(tok->unk_id() == 2);
  for (const json& c : doc["cases"]) {
    const std::string text = c["text"];
    check_ids("t5 max_length=32", text, tok->encode(text, 32), c["t5_32"]);
    check_ids("t5 max_length=16", text, tok->encode(text, 16), c["t5_16"]);
  }
}

TEST_CASE("T5 tokenizer loads from a folder and explains missing files", "[tokenizer]") {
  REQUIRE(te::T5Tokenizer::load(kDir + "/t5").is_ok());

  auto missing = te::T5Tokenizer::load(kDir + "/no_such_file.model");
  REQUIRE_FALSE(missing.is_ok());
  CHECK_THAT(missing.status().message(), Catch::Contains("does not exist"));

  // A folder with only the fast tokenizer's file: the message must say spiece.model is needed.
  const fs::path only_json = temp_dir("t5json");
  std::ofstream(only_json / "tokenizer.json") << "{}";
  auto no_spm = te::T5Tokenizer::load(only_json.string());
  REQUIRE_FALSE(no_spm.is_ok());
  CHECK_THAT(no_spm.status().message(), Catch::Contains("spiece.model"));
  CHECK_THAT(no_spm.status().message(), Catch::Contains(only_json.string()));

  std::ofstream(only_json / "spiece.model") << "not a protobuf";
  auto bad = te::T5Tokenizer::load(only_json.string());
  REQUIRE_FALSE(bad.is_ok());
  CHECK_THAT(bad.status().message(), Catch::Contains("cannot load SentencePiece model"));
  fs::remove_all(only_json);
}

TEST_CASE("T5 truncation keeps </s> last and max_length=1 is just </s>", "[tokenizer]") {
  auto tok = te::T5Tokenizer::load(kDir + "/t5");
  REQUIRE(tok.is_ok());
  const auto ids = tok->encode("a large red circle at the left on a blue background", 4);
  REQUIRE(ids.size() == 4);
  CHECK(ids[3] == tok->eos_id());
  CHECK(tok->encode("anything", 1) == std::vector<int64_t>{tok->eos_id()});
}

TEST_CASE("CLIP tokenizer matches transformers on every case (vocab.json + merges.txt and tokenizer.json)",
          "[tokenizer]") {
  const json doc = read_json(kDir + "/cases.json");
  // Each loading route in its own folder, so tokenizer.json cannot shadow vocab.json + merges.txt.
  const fs::path files_dir = temp_dir("clipfiles"), json_dir = temp_dir("clipjson");
  fs::copy_file(kDir + "/clip/vocab.json", files_dir / "vocab.json");
  fs::copy_file(kDir + "/clip/merges.txt", files_dir / "merges.txt");
  fs::copy_file(kDir + "/clip/tokenizer.json", json_dir / "tokenizer.json");
  for (const fs::path& dir : {files_dir, json_dir}) {
    auto tok = te::ClipTokenizer::load(dir.string());
    REQUIRE(tok.is_ok());
    CHECK(tok->vocab_size() == doc["clip"]["vocab_size"].get<int64_t>());
    CHECK(tok->bos_id() == doc["clip"]["bos_id"].get<int64_t>());
    CHECK(tok->eos_id() == doc["clip"]["eos_id"].get<int64_t>());
    CHECK(tok->pad_id() == doc["clip"]["pad_id"].get<int64_t>());
    for (const json& c : doc["cases"]) {
      const std::string text = c["text"];
      check_ids("clip (" + dir.filename().string() + ") max_length=77", text, tok->encode(text, 77), c["clip_77"]);
    }
  }
  fs::remove_all(files_dir);
  fs::remove_all(json_dir);
}

TEST_CASE("CLIP pad token comes from special_tokens_map.json when present", "[tokenizer]") {
  const fs::path dir = temp_dir("clippad");
  fs::copy_file(kDir + "/clip/vocab.json", dir / "vocab.json");
  fs::copy_file(kDir + "/clip/merges.txt", dir / "merges.txt");
  // Stable Diffusion 2's tokenizer pads with "!" instead of <|endoftext|>.
  std::ofstream(dir / "special_tokens_map.json") << R"({"pad_token": {"content": "!"}})";
  auto tok = te::ClipTokenizer::load(dir.string());
  REQUIRE(tok.is_ok());
  const int64_t bang = read_json((dir / "vocab.json").string())["!"];
  CHECK(tok->pad_id() == bang);
  const auto ids = tok->encode("a", 5);
  CHECK(ids[3] == bang);
  CHECK(ids[4] == bang);
  CHECK(ids[2] == tok->eos_id());
  fs::remove_all(dir);
}

TEST_CASE("CLIP tokenizer explains missing and broken files", "[tokenizer]") {
  auto not_dir = te::ClipTokenizer::load(kDir + "/no_such_dir");
  REQUIRE_FALSE(not_dir.is_ok());
  CHECK_THAT(not_dir.status().message(), Catch::Contains("not a folder"));

  const fs::path dir = temp_dir("clipbad");
  auto empty = te::ClipTokenizer::load(dir.string());
  REQUIRE_FALSE(empty.is_ok());
  CHECK_THAT(empty.status().message(), Catch::Contains("merges.txt"));

  std::ofstream(dir / "tokenizer.json") << "{ not json";
  auto bad_json = te::ClipTokenizer::load(dir.string());
  REQUIRE_FALSE(bad_json.is_ok());
  CHECK_THAT(bad_json.status().message(), Catch::Contains("not valid JSON"));

  fs::remove(dir / "tokenizer.json");
  std::ofstream(dir / "vocab.json") << R"({"a": 0, "b": 1, "<|startoftext|>": 2, "<|endoftext|>": 3})";
  std::ofstream(dir / "merges.txt") << "#version: 0.2\na b\n";
  auto bad_merge = te::ClipTokenizer::load(dir.string());
  REQUIRE_FALSE(bad_merge.is_ok());
  CHECK_THAT(bad_merge.status().message(), Catch::Contains("not in the vocabulary"));
  fs::remove_all(dir);
}

// ICU supplies the Unicode properties; the tokenizers library (Rust) is the reference. Compared on
// every code point that Python's (older) Unicode database calls assigned.
TEST_CASE("CLIP Unicode classes, lowercase and NFC agree with tokenizers", "[tokenizer]") {
  const json t = read_json(kDir + "/unicode_tables.json");
  auto in_ranges = [](const json& ranges) {
    std::vector<bool> v(0x110000, false);
    for (const json& r : ranges) {
      for (uint32_t c = r[0].get<uint32_t>(); c <= r[1].get<uint32_t>(); ++c) v[c] = true;
    }
    return v;
  };
  const auto assigned = in_ranges(t["assigned"]), letter = in_ranges(t["letter"]);
  const auto number = in_ranges(t["number"]), space = in_ranges(t["space"]);
  std::map<char32_t, std::u32string> lower, nfc;
  for (const json& e : t["lower"]) lower[e[0].get<char32_t>()] = std::u32string(e.begin() + 1, e.end());
  for (const json& e : t["nfc"]) nfc[e[0].get<char32_t>()] = std::u32string(e.begin() + 1, e.end());

  int mismatches = 0;
  for (char32_t c = 0; c < 0x110000; ++c) {
    if (!assigned[c] || (c >= 0xD800 && c <= 0xDFFF)) continue;
    const std::u32string want_lower = lower.count(c) ? lower[c] : std::u32string(1, c);
    // normalize() also lowercases and folds spaces, so compare its NFC step through the lowercase table.
    const bool ok = te::clip_text::is_letter(c) == letter[c] && te::clip_text::is_number(c) == number[c] &&
                    te::clip_text::is_space(c) == space[c] && te::clip_text::to_lower(c) == want_lower;
    if (!ok && ++mismatches <= 10) {
      WARN("code point U+" << std::hex << static_cast<uint32_t>(c) << " class or lowercase differs");
    }
  }
  CHECK(mismatches == 0);

  int nfc_mismatches = 0;
  for (const auto& [c, composed] : nfc) {
    if (!assigned[c] || space[c]) continue;
    std::u32string want;
    for (char32_t x : composed) want += lower.count(x) ? lower[x] : std::u32string(1, x);
    const std::u32string got = te::clip_text::normalize(te::clip_text::to_utf8(std::u32string(1, c)));
    if (got != want && ++nfc_mismatches <= 10) {
      WARN("NFC of U+" << std::hex << static_cast<uint32_t>(c) << " differs");
    }
  }
  CHECK(nfc_mismatches == 0);
}
