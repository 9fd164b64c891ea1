// BatchReporter's stage progress: a stage event per encode / denoise step / decode of every pass on the
// JSON stream, and without a terminal a stderr line per stage of a group's first pass only (later passes
// are quiet until 10 s go by without a line), so a piped run shows where a slow first pass is.
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/batch/reporter.h"

#include <catch2/catch.hpp>

namespace {

std::string read_all(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string text;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
  return text;
}

std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(at, end - at);
    if (line.find(needle) != std::string::npos) out.push_back(line);
    at = end + 1;
  }
  return out;
}

void run_pass(app::BatchReporter& r, int images, int steps) {
  r.pass_start(images);
  r.stage("encode", 0, 1);
  r.stage("encode", 1, 1);
  for (int i = 0; i <= steps; ++i) r.stage("denoise", i, steps);
  r.stage("decode", 0, 1);
  r.stage("decode", 1, 1);
}

// stdout and stderr of a reporter (not a terminal) through one group of passes of {images, steps}.
std::pair<std::string, std::string> report(bool quiet, const std::vector<std::pair<int, int>>& passes) {
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  REQUIRE(out != nullptr);
  REQUIRE(err != nullptr);
  {
    app::BatchReporter r(quiet, /*json=*/true, /*tty=*/false, out, err);
    app::BatchTotals totals;
    for (const auto& pass : passes) totals.images += pass.first;
    totals.to_run = totals.images;
    totals.groups = 1;
    r.start(totals, "/tmp/out");
    r.group_start(1, app::JobSettings{}, totals.images);
    for (const auto& pass : passes) run_pass(r, pass.first, pass.second);
    r.group_done();
  }
  std::pair<std::string, std::string> texts{read_all(out), read_all(err)};
  std::fclose(out);
  std::fclose(err);
  return texts;
}

}  // namespace

TEST_CASE("batch reporter: stage events for every pass, stderr lines for a group's first pass") {
  const auto [out, err] = report(false, {{4, 3}, {3, 3}});
  std::vector<nlohmann::json> stages;
  for (const std::string& line : lines_with(out, "\"event\":\"stage\"")) stages.push_back(nlohmann::json::parse(line));
  const size_t per_pass = 2 + 4 + 2;  // encode 0/1 1/1, denoise 0..3 of 3, decode 0/1 1/1
  REQUIRE(stages.size() == 2 * per_pass);
  for (size_t k = 0; k < stages.size(); ++k) {
    const nlohmann::json& e = stages[k];
    INFO(e.dump());
    CHECK(e["pass"] == (k < per_pass ? 1 : 2));
    CHECK(e["images"] == (k < per_pass ? 4 : 3));
    CHECK(e["seconds"].get<double>() >= 0.0);
    CHECK(e["pass_seconds"].get<double>() <= e["seconds"].get<double>());
    if (k > 0) CHECK(e["seconds"].get<double>() >= stages[k - 1]["seconds"].get<double>());
  }
  CHECK(stages[0]["stage"] == "encode");
  CHECK(stages[3]["stage"] == "denoise");
  CHECK(stages[3]["done"] == 1);
  CHECK(stages[3]["of"] == 3);
  CHECK(stages[per_pass - 1]["stage"] == "decode");
  CHECK(stages[per_pass - 1]["done"] == 1);

  CHECK(lines_with(err, "pass 1 (4 images): ").size() == per_pass);
  CHECK(lines_with(err, "pass 1 (4 images): denoise 2/3 at ").size() == 1);
  CHECK(lines_with(err, "pass 2 (3 images)").empty());  // the run took far less than 10 s
}

TEST_CASE("batch reporter: quiet prints no stage lines, events still go out") {
  const auto [out, err] = report(true, {{1, 2}});
  CHECK(lines_with(out, "\"event\":\"stage\"").size() == 7);
  CHECK(err.empty());
}
