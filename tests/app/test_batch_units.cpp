// The pieces of `ditrun batch` without a model: prompts-file parsing, job expansion (seeds, names,
// duplicates, groups), SHA-256, the manifest (append, torn lines, resume decisions), and the
// out-of-memory retry of run_in_chunks.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "app/batch/chunks.h"
#include "app/batch/jobs.h"
#include "app/batch/manifest.h"
#include "app/batch/prompts_file.h"
#include "app/batch/sha256.h"
#include "base/out_of_memory.h"
#include "harness/safetensors_writer.h"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;

static app::JobSettings base_settings() {
  app::JobSettings s;
  s.width = s.height = 64;
  s.steps = 2;
  s.guidance = 0.f;
  s.max_sequence_length = 24;
  s.model = "m";
  return s;
}

TEST_CASE("batch prompts file: plain lines, JSON lines, comments, bad lines", "[batch]") {
  const std::string text =
      "a red circle\n"
      "\n"
      "# a comment\n"
      "  {\"prompt\": \"a green square\", \"seed\": 7, \"width\": 128, \"name\": \"sq\", \"steps\": 3,"
      " \"guidance\": 2.5, \"negative_prompt\": \"blur\", \"attention\": \"dense\", \"dense_steps\": 1}\n"
      "{\"prompt\": \"x\", \"colour\": 1}\n"
      "{\"prompt\": \"x\", \"width\": 100}\n"
      "{\"prompt\": \"x\",\n"
      "{\"prompt\": \"   \"}\n"
      "{\"prompt\": \"x\", \"steps\": \"4\"}\n"
      "{\"prompt\": \"x\", \"name\": \"../evil\"}\n"
      "{\"seed\": 3}\n"
      "{\"prompt\": \"x\", \"name\": \"a/b\"}\n"
      "{\"prompt\": [\"a\"]}\n"
      "{\"prompt\": \"x\", \"attention\": \"nope\"}\n"
      "{\"prompt\": \"x\", \"seed\": -1}\n";
  const auto items = app::parse_prompts(text);
  REQUIRE(items.size() == 13);
  CHECK(items[0].line == 1);
  CHECK(items[0].prompt == "a red circle");
  CHECK(items[0].error.empty());
  const app::PromptItem& sq = items[1];
  CHECK(sq.line == 4);
  CHECK(sq.error.empty());
  CHECK(sq.prompt == "a green square");
  CHECK(sq.name == "sq");
  CHECK(*sq.overrides.seed == 7);
  CHECK(*sq.overrides.width == 128);
  CHECK_FALSE(sq.overrides.height);
  CHECK(*sq.overrides.steps == 3);
  CHECK(*sq.overrides.guidance == 2.5f);
  CHECK(*sq.overrides.negative_prompt == "blur");
  CHECK(*sq.overrides.attention == "dense");
  CHECK(*sq.overrides.dense_steps == 1);
  const std::vector<std::pair<int, std::string>> errors = {
      {5, "unknown key \"colour\""},
      {6, "\"width\" 100 is not a multiple of 16"},
      {7, "invalid JSON: parse error"},
      {8, "empty prompt"},
      {9, "\"steps\" must be an integer, not \"4\""},
      {10, "\"name\" ../evil must not start with '.'"},
      {11, "missing \"prompt\""},
      {12, "\"name\" a/b may hold only letters"},
      {13, "\"prompt\" must be a string, not [\"a\"]"},
      {14, "\"attention\" nope"},
      {15, "\"seed\" -1 is out of range"},
  };
  for (size_t i = 0; i < errors.size(); ++i) {
    const app::PromptItem& it = items[i + 2];
    INFO(it.error);
    CHECK(it.line == errors[i].first);
    CHECK(it.error.find(errors[i].second) != std::string::npos);
  }
}

TEST_CASE("batch prompts file: a missing file is an error naming it", "[batch]") {
  auto r = app::read_prompts_file("/nonexistent/prompts.txt");
  REQUIRE_FALSE(r);
  CHECK(r.status().message().find("/nonexistent/prompts.txt") != std::string::npos);
}

TEST_CASE("batch jobs: seeds, names, overrides, duplicates, name conflicts, groups", "[batch]") {
  const auto items = app::parse_prompts(
      "A Red, Circle!\n"                                          // 1
      "{\"prompt\": \"a square\", \"name\": \"sq\", \"seed\": 7}\n"  // 2
      "A Red, Circle!\n"                                          // 3: same prompt, other line: other names, same images
      "{\"prompt\": \"a square\", \"seed\": 8, \"name\": \"sq2\"}\n"  // 4: seeds 8, 9: 8 duplicates line 2's
      "{\"prompt\": \"other\", \"name\": \"sq\", \"seed\": 7}\n"     // 5: name sq_s7 taken by another prompt
      "{\"prompt\": \"big\", \"width\": 128}\n"                     // 6: another group
      "{bad\n");                                                  // 7
  const app::ExpandedBatch b = app::expand_jobs(items, base_settings(), 42, 2);
  std::vector<std::string> outputs;
  for (const app::Job& j : b.jobs) outputs.push_back(j.output);
  CHECK(outputs == std::vector<std::string>{"a-red-circle_L1_s42.png", "a-red-circle_L1_s43.png", "sq_s7.png", "sq_s8.png",
                                            "sq2_s9.png", "big_L6_s42.png", "big_L6_s43.png"});
  CHECK(b.duplicates == 3);  // line 3 twice, line 4's seed 8
  CHECK(b.jobs[0].duplicates == std::vector<int>{3});
  CHECK(b.jobs[3].duplicates == std::vector<int>{4});
  REQUIRE(b.errors.size() == 2);
  CHECK(b.errors[0].line == 5);
  CHECK(b.errors[0].message.find("sq_s7.png is already used by line 2") != std::string::npos);
  CHECK(b.errors[1].line == 7);
  CHECK(b.jobs[5].settings.width == 128);
  CHECK(b.jobs[5].settings.height == 64);
  CHECK(b.jobs[0].params()["prompt"] == "A Red, Circle!");
  CHECK(b.jobs[0].params()["seed"] == 42);

  std::vector<size_t> all(b.jobs.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  const auto groups = app::group_jobs(b.jobs, all);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0] == std::vector<size_t>{0, 1, 2, 3, 4});
  CHECK(groups[1] == std::vector<size_t>{5, 6});
}

TEST_CASE("batch jobs: an unused negative prompt does not split groups", "[batch]") {
  const auto items = app::parse_prompts("a\n{\"prompt\": \"b\", \"negative_prompt\": \"blur\"}\n");
  app::JobSettings s = base_settings();
  auto b = app::expand_jobs(items, s, 1, 1);
  CHECK_FALSE(b.jobs[1].settings.negative_prompt);
  CHECK(app::group_jobs(b.jobs, {0, 1}).size() == 1);
  s.true_cfg = 2.f;
  b = app::expand_jobs(items, s, 1, 1);
  CHECK(*b.jobs[1].settings.negative_prompt == "blur");
  CHECK(app::group_jobs(b.jobs, {0, 1}).size() == 2);
}

TEST_CASE("batch slug", "[batch]") {
  CHECK(app::prompt_slug("  A large RED circle, at the left!  ") == "a-large-red-circle-at-the-left");
  CHECK(app::prompt_slug("\xc3\xa9t\xc3\xa9") == "t");
  CHECK(app::prompt_slug("!!!") == "prompt");
  CHECK(app::prompt_slug(std::string(100, 'a')).size() == 40);
}

TEST_CASE("sha256: FIPS 180-2 examples", "[batch]") {
  CHECK(app::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(app::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(app::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(app::sha256_hex(std::string(1000000, 'a')) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Lengths around the padding boundary, against sha256sum's answers.
  CHECK(app::sha256_hex(std::string(55, 'x')) == "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072");
  CHECK(app::sha256_hex(std::string(56, 'x')) == "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e");
  CHECK(app::sha256_hex(std::string(64, 'x')) == "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c");
  CHECK(app::sha256_hex(std::string(119, 'x')) == "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c");
}

TEST_CASE("batch manifest: append, reopen, torn last line, resume decisions", "[batch]") {
  const std::string dir = test::make_temp_dir("batch_manifest");
  const std::string path = dir + "/manifest.jsonl";
  const auto items = app::parse_prompts("a\nb\nc\n");
  const auto b = app::expand_jobs(items, base_settings(), 1, 1);
  const std::string png_a = dir + "/" + b.jobs[0].output;
  std::ofstream(png_a) << "image a";
  {
    auto m = app::Manifest::open(path);
    REQUIRE(m);
    REQUIRE(m->append(app::ok_record(b.jobs[0], app::sha256_hex("image a"), 1.5, 2)));
    REQUIRE(m->append(app::error_record(2, "boom", &b.jobs[1])));
  }
  // A crash in the middle of an append leaves a torn line.
  { std::ofstream(path, std::ios::app) << "{\"status\":\"ok\",\"outp"; }
  auto m = app::Manifest::open(path);
  REQUIRE(m);
  CHECK(m->unreadable_lines() == 1);
  REQUIRE(m->latest_ok(b.jobs[0].output));
  CHECK(m->latest_ok(b.jobs[1].output) == nullptr);
  REQUIRE(m->append(app::error_record(3, "later")));
  {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    REQUIRE(lines.size() == 4);
    CHECK(lines[3].find("\"later\"") != std::string::npos);  // on a line of its own after the torn one
  }
  // A second run on the same directory is refused while this one holds the manifest.
  auto second = app::Manifest::open(path);
  REQUIRE_FALSE(second);
  CHECK(second.status().message().find("another ditrun batch is using") != std::string::npos);
  using A = app::ResumeAction;
  CHECK(app::decide_resume(b.jobs[0], dir, *m, false).action == A::Skip);
  CHECK(app::decide_resume(b.jobs[1], dir, *m, false).action == A::Generate);
  std::ofstream(png_a) << "edited";
  CHECK(app::decide_resume(b.jobs[0], dir, *m, false).action == A::Regenerate);
  fs::remove(png_a);
  CHECK(app::decide_resume(b.jobs[0], dir, *m, false).action == A::Regenerate);
  // A file nobody recorded, or recorded with other parameters: only --overwrite replaces it.
  std::ofstream(dir + "/" + b.jobs[2].output) << "stranger";
  const auto conflict = app::decide_resume(b.jobs[2], dir, *m, false);
  CHECK(conflict.action == A::Conflict);
  CHECK(conflict.why.find("--overwrite") != std::string::npos);
  CHECK(app::decide_resume(b.jobs[2], dir, *m, true).action == A::Replace);
  std::ofstream(png_a) << "image a";
  app::Job changed = b.jobs[0];
  changed.settings.steps = 9;
  CHECK(app::decide_resume(changed, dir, *m, false).action == A::Conflict);
  fs::remove_all(dir);
}

TEST_CASE("batch chunks: out of memory halves the batch size down to 1", "[batch]") {
  std::vector<size_t> jobs = {0, 1, 2, 3, 4, 5, 6};
  std::vector<std::vector<size_t>> ran;
  std::vector<size_t> oom;
  std::vector<std::pair<int, int>> shrinks;
  int batch_size = 4;
  app::ChunkCallbacks cb;
  // Passes of more than 2 images run out of memory; a pass with image 5 does too, even alone.
  cb.run = [&](const std::vector<size_t>& c) {
    if (c.size() > 2 || std::find(c.begin(), c.end(), 5) != c.end()) throw rt::OutOfMemory("out of memory: asked for 1 GiB");
    ran.push_back(c);
  };
  cb.out_of_memory = [&](size_t j, const std::string&) { oom.push_back(j); };
  cb.shrink = [&](int from, int to, const std::string&) { shrinks.push_back({from, to}); };
  CHECK(app::run_in_chunks(jobs, &batch_size, cb) == 0);
  CHECK(shrinks == std::vector<std::pair<int, int>>{{4, 2}, {2, 1}});
  CHECK(ran == std::vector<std::vector<size_t>>{{0, 1}, {2, 3}, {4}, {6}});
  CHECK(oom == std::vector<size_t>{5});
  CHECK(batch_size == 1);

  // stop() ends the group before the next pass and says how many were left.
  ran.clear();
  batch_size = 2;
  cb.stop = [&] { return ran.size() == 1; };
  CHECK(app::run_in_chunks(jobs, &batch_size, cb) == 5);
  CHECK(ran.size() == 1);
}
