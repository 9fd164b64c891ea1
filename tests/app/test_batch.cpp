// `ditrun batch` end to end on the CPU with the embedded model (models/ditrun-shapes) at 32x32 to 64x64
// and 1-3 steps, so the whole file stays short: the files and manifest a mixed prompts file produces,
// resume (nothing redone, a deleted or damaged image regenerated, strangers' files kept), Ctrl-C in the
// middle and the re-run that completes the batch, batched images equal to one-at-a-time images, and an
// unwritable output directory.
#include <signal.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/batch/sha256.h"
#include "app/io/png_writer.h"
#include "app/pipeline/batch_generate.h"
#include "app/pipeline/flux_pipeline.h"
#include "harness/run.h"
#include "harness/safetensors_writer.h"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::vector<json> read_jsonl(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

std::vector<json> read_manifest(const std::string& dir) {
  std::ifstream in(dir + "/manifest.jsonl");
  std::stringstream ss;
  ss << in.rdbuf();
  return read_jsonl(ss.str());
}

std::vector<json> events(const std::vector<json>& all, const std::string& name) {
  std::vector<json> out;
  for (const json& e : all)
    if (e.value("event", "") == name) out.push_back(e);
  return out;
}

std::set<std::string> pngs_in(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".png") names.insert(e.path().filename().string());
  return names;
}

// Modification times (ns) of every PNG: a skipped image keeps its own.
std::map<std::string, int64_t> mtimes(const std::string& dir) {
  std::map<std::string, int64_t> out;
  for (const std::string& n : pngs_in(dir)) {
    struct stat st {};
    REQUIRE(::stat((dir + "/" + n).c_str(), &st) == 0);
    out[n] = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  }
  return out;
}

std::string write_prompts(const std::string& dir, const std::string& text) {
  const std::string path = dir + "/prompts.jsonl";
  std::ofstream(path) << text;
  return path;
}

const char* kRed = "a large red circle at the left on a blue background";
const std::string kRedSlug = "a-large-red-circle-at-the-left-on-a-blue";  // 40 characters

}  // namespace

TEST_CASE("batch: a mixed prompts file gives exactly the expected files and manifest, and a re-run redoes nothing",
          "[batch]") {
  const std::string dir = test::make_temp_dir("batch_mixed");
  const std::string out = dir + "/out";
  const std::string prompts = write_prompts(
      dir, std::string(kRed) + "\n" +                                                               // 1
               "{\"prompt\": \"a small green square on a white background\", \"seed\": 7, \"name\": \"square\"}\n"  // 2
               "{\"prompt\": \"a blue star\", \"width\": 64, \"steps\": 1}\n"                                 // 3
               "{\"prompt\": \"oops\",\n"                                                                    // 4
               "\n" +                                                                                        // 5
               kRed + "\n");                                                                                 // 6
  const std::string cmd = "batch --prompts " + test::q(prompts) + " --out-dir " + test::q(out) +
                          " -W 32 -H 32 --steps 2 --seeds 2 --seed 1 --batch-size 2 --log-json";
  auto r = test::run_ditrun(cmd);
  INFO(r.stderr_text);
  CHECK(r.rc == 1);  // the malformed line: not every item succeeded
  const std::set<std::string> expected = {kRedSlug + "_L1_s1.png", kRedSlug + "_L1_s2.png", "square_s7.png",
                                          "square_s8.png",         "a-blue-star_L3_s1.png",   "a-blue-star_L3_s2.png"};
  CHECK(pngs_in(out) == expected);
  const auto ev = read_jsonl(r.stdout_text);
  REQUIRE(events(ev, "start").size() == 1);
  const json start = events(ev, "start")[0];
  CHECK(start["images"] == 6);
  CHECK(start["duplicates"] == 2);
  CHECK(start["bad_lines"] == 1);
  CHECK(start["groups"] == 2);
  CHECK(events(ev, "image_done").size() == 6);
  CHECK(events(ev, "group_done").size() == 2);
  REQUIRE(events(ev, "finished").size() == 1);
  CHECK(events(ev, "finished")[0]["generated"] == 6);
  CHECK(events(ev, "finished")[0]["exit_code"] == 1);
  const auto errors = events(ev, "image_error");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0]["line"] == 4);
  CHECK(errors[0]["error"].get<std::string>().find("invalid JSON") != std::string::npos);

  const auto manifest = read_manifest(out);
  REQUIRE(manifest.size() == 7);
  CHECK(manifest[0]["status"] == "error");
  CHECK(manifest[0]["line"] == 4);
  std::map<std::string, json> ok;
  for (const json& m : manifest)
    if (m["status"] == "ok") ok[m["output"]] = m;
  REQUIRE(ok.size() == 6);
  for (const auto& [name, m] : ok) {
    INFO(name);
    CHECK(m["sha256"].get<std::string>() == *app::sha256_file(out + "/" + name));
    CHECK(m["seconds"].get<double>() > 0);
  }
  const json& red = ok[kRedSlug + "_L1_s2.png"];
  CHECK(red["line"] == 1);
  CHECK(red["duplicates"] == json::array({6}));
  CHECK(red["seed"] == 2);
  CHECK(red["params"]["prompt"] == kRed);
  CHECK(red["params"]["width"] == 32);
  CHECK(red["params"]["steps"] == 2);
  CHECK(ok["square_s8.png"]["params"]["seed"] == 8);
  CHECK(ok["a-blue-star_L3_s1.png"]["params"]["width"] == 64);
  CHECK(ok["a-blue-star_L3_s1.png"]["params"]["height"] == 32);
  CHECK(ok["a-blue-star_L3_s1.png"]["params"]["steps"] == 1);
  int w = 0, h = 0;
  REQUIRE(app::read_png_rgb8(out + "/a-blue-star_L3_s2.png", &w, &h));
  CHECK((w == 64 && h == 32));
  auto text = app::read_png_text(out + "/square_s7.png");
  REQUIRE(text);
  REQUIRE(text->size() >= 1);
  CHECK((*text)[0].second.find("prompt: a small green square on a white background\n") == 0);
  CHECK((*text)[0].second.find("\nseed: 7\n") != std::string::npos);

  SECTION("a re-run skips every image and rewrites none") {
    const auto before = mtimes(out);
    auto again = test::run_ditrun(cmd);
    INFO(again.stderr_text);
    CHECK(again.rc == 1);
    const auto ev2 = read_jsonl(again.stdout_text);
    CHECK(events(ev2, "start")[0]["skipped"] == 6);
    CHECK(events(ev2, "image_done").empty());
    CHECK(mtimes(out) == before);
    // The bad line is reported again but recorded once.
    CHECK(events(ev2, "image_error").size() == 1);
    CHECK(read_manifest(out).size() == 7);
  }
  SECTION("a deleted or damaged image is regenerated, the same bytes; a stranger's file is kept") {
    const std::string gone = kRedSlug + "_L1_s1.png", damaged = "square_s8.png", stranger = "a-blue-star_L3_s2.png";
    fs::remove(out + "/" + gone);
    std::ofstream(out + "/" + damaged, std::ios::app) << "x";
    // A file the manifest does not know under an output name: rewrite the manifest without it.
    {
      std::ofstream m(out + "/manifest.jsonl");
      for (const json& rec : manifest)
        if (rec.value("output", "") != stranger) m << rec.dump() << "\n";
    }
    const auto before = mtimes(out);
    auto again = test::run_ditrun(cmd);
    INFO(again.stderr_text);
    const auto ev2 = read_jsonl(again.stdout_text);
    std::set<std::string> redone;
    for (const json& e : events(ev2, "image_done")) redone.insert(fs::path(e["output"].get<std::string>()).filename().string());
    CHECK(redone == std::set<std::string>{gone, damaged});
    CHECK(*app::sha256_file(out + "/" + gone) == ok[gone]["sha256"].get<std::string>());
    CHECK(*app::sha256_file(out + "/" + damaged) == ok[damaged]["sha256"].get<std::string>());
    const auto after = mtimes(out);
    for (const auto& [name, t] : before)
      if (name != damaged) CHECK(after.at(name) == t);
    bool refused = false;
    for (const json& e : events(ev2, "image_error"))
      refused |= e.value("output", "") == stranger && e["error"].get<std::string>().find("--overwrite") != std::string::npos;
    CHECK(refused);
    CHECK(again.rc == 1);
    // --overwrite replaces it (and records it), skipping the rest.
    auto forced = test::run_ditrun(cmd + " --overwrite");
    const auto ev3 = read_jsonl(forced.stdout_text);
    REQUIRE(events(ev3, "image_done").size() == 1);
    CHECK(fs::path(events(ev3, "image_done")[0]["output"].get<std::string>()).filename() == stranger);
  }
  fs::remove_all(dir);
}

// Starts ditrun with args (no shell), stdout on a pipe (returned), stderr into stderr_file; file_limit > 0
// caps the size of every file it writes (RLIMIT_FSIZE: writes beyond fail with EFBIG, as on a full disk).
static pid_t spawn_ditrun(const std::vector<std::string>& args, const std::string& stderr_file, int* stdout_fd,
                          rlim_t file_limit = 0) {
  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(pipefd[1], STDOUT_FILENO);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    const int err = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(err, STDERR_FILENO);
    if (file_limit > 0) {
      ::signal(SIGXFSZ, SIG_IGN);  // the write fails instead of the process being killed
      const struct rlimit lim = {file_limit, file_limit};
      ::setrlimit(RLIMIT_FSIZE, &lim);
    }
    std::vector<char*> argv{const_cast<char*>(DITRUN_BINARY)};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(DITRUN_BINARY, argv.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  *stdout_fd = pipefd[0];
  return pid;
}

static int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Runs ditrun and reads its stdout; once `trigger` shows up there sends SIGINT, and with `twice` a second
// one once the first was handled (the handler's note is on stderr: two signals sent back to back would
// merge into one pending signal). Returns the exit status and stdout.
static std::pair<int, std::string> run_and_interrupt(const std::vector<std::string>& args, bool twice,
                                                     const std::string& stderr_file,
                                                     const std::vector<std::string>& trigger = {"\"event\":\"image_done\""}) {
  int fd = -1;
  const pid_t pid = spawn_ditrun(args, stderr_file, &fd);
  std::string text;
  bool sent = false;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) {
    text.append(buf, size_t(n));
    if (sent || std::none_of(trigger.begin(), trigger.end(),
                             [&](const std::string& t) { return text.find(t) != std::string::npos; }))
      continue;
    ::kill(pid, SIGINT);
    sent = true;
    for (int waited = 0; twice && waited < 500; ++waited) {  // up to 5 s
      std::ifstream in(stderr_file);
      std::stringstream ss;
      ss << in.rdbuf();
      if (ss.str().find("Ctrl-C: stopping") != std::string::npos) {
        ::kill(pid, SIGINT);
        break;
      }
      ::usleep(10000);
    }
  }
  ::close(fd);
  return {wait_exit(pid), text};
}

TEST_CASE("batch: Ctrl-C stops after the current image with a consistent manifest, and a re-run completes it", "[batch]") {
  const std::string dir = test::make_temp_dir("batch_sigint");
  const std::string out = dir + "/out";
  std::string text;
  // Eight images of a few hundred ms each: the SIGINT sent after the first lands long before the last.
  const size_t total = 8;
  for (const char* color : {"red", "green", "blue", "yellow", "white", "black", "gray", "purple"})
    text += std::string("a large ") + color + " circle at the left on a gray background\n";
  const std::string prompts = write_prompts(dir, text);
  const std::vector<std::string> args = {"batch", "--prompts", prompts, "--out-dir", out, "-W", "64", "-H", "64",
                                         "--steps", "3", "--batch-size", "1", "--log-json"};
  const auto [rc, stdout_text] = run_and_interrupt(args, false, dir + "/stderr.txt");
  INFO(stdout_text);
  CHECK(rc == 1);
  const auto ev = read_jsonl(stdout_text);
  const size_t done = events(ev, "image_done").size();
  CHECK(done >= 1);
  CHECK(done < total);
  REQUIRE(events(ev, "finished").size() == 1);
  CHECK(events(ev, "finished")[0]["interrupted"] == true);
  CHECK(events(ev, "finished")[0]["not_run"] == total - done);
  CHECK(pngs_in(out).size() == done);
  CHECK(read_manifest(out).size() == done);
  for (const auto& e : fs::directory_iterator(out))
    CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);

  const auto before = mtimes(out);
  auto again = test::run_ditrun(test::q(args[0]) + " --prompts " + test::q(prompts) + " --out-dir " + test::q(out) +
                                " -W 64 -H 64 --steps 3 --batch-size 1 --log-json");
  INFO(again.stderr_text);
  CHECK(again.rc == 0);
  const auto ev2 = read_jsonl(again.stdout_text);
  CHECK(events(ev2, "start")[0]["skipped"] == done);
  CHECK(events(ev2, "image_done").size() == total - done);
  CHECK(pngs_in(out).size() == total);
  const auto after = mtimes(out);
  for (const auto& [name, t] : before) CHECK(after.at(name) == t);
  std::set<std::string> recorded;
  for (const json& m : read_manifest(out)) {
    CHECK(m["status"] == "ok");
    recorded.insert(m["output"]);
  }
  CHECK(recorded.size() == total);
  CHECK(read_manifest(out).size() == total);

  SECTION("a second Ctrl-C exits at once") {
    fs::remove_all(out);
    // Both signals must land inside a pass: sent between two passes, the first alone ends the run with 1.
    // So the first goes once the second pass has reported a stage, and its images (256x256, 30 steps, a few
    // seconds each) outlast the wait for the handler's note.
    std::vector<std::string> slow = args;
    for (const auto& [flag, value] : {std::pair<std::string, std::string>{"--steps", "30"}, {"-W", "256"}, {"-H", "256"}})
      slow[std::find(slow.begin(), slow.end(), flag) - slow.begin() + 1] = value;
    const auto [rc2, text2] = run_and_interrupt(slow, true, dir + "/stderr.txt", {"\"pass\":2,", "\"pass\":2}"});
    CHECK(rc2 == 130);
    CHECK(events(read_jsonl(text2), "finished").empty());
    for (const json& m : read_manifest(out)) CHECK(m["status"] == "ok");  // whole lines only
  }
  fs::remove_all(dir);
}

TEST_CASE("batch: batched images equal one-at-a-time images", "[batch]") {
  const rt::Context ctx;
  auto paths = app::resolve_model_paths({app::embedded_model_dir(), "", "", "", ""});
  REQUIRE(paths);
  auto pipe = app::FluxPipeline::load(ctx, *paths);
  INFO(pipe.status().message());
  REQUIRE(pipe);
  app::GenerateParams p;
  p.width = 64;
  p.height = 48;
  p.steps = 2;
  p = (*pipe)->with_defaults(p);
  const app::ProgressFn quiet = [](const char*, int, int) {};
  const std::vector<app::BatchImage> images = {{kRed, 1}, {"a small green square on a white background", 2}, {kRed, 3}};
  for (bool true_cfg : {false, true}) {
    INFO("true CFG " << true_cfg);
    app::GenerateParams q = p;
    if (true_cfg) {
      q.true_cfg = 2.f;
      q.negative_prompt = "";
    }
    app::TextEmbeddingCache cache;
    auto batched = (*pipe)->generate_batch(ctx, q, images, &cache, quiet);
    REQUIRE(batched);
    REQUIRE(batched->size() == images.size());
    CHECK(cache.size() == (true_cfg ? 3u : 2u));  // the repeated prompt encoded once
    for (size_t i = 0; i < images.size(); ++i) {
      app::GenerateParams one = q;
      one.prompt = images[i].prompt;
      one.seed = images[i].seed;
      auto single = (*pipe)->generate(ctx, one, quiet);
      REQUIRE(single);
      const rt::Tensor& a = (*batched)[i];
      const rt::Tensor& b = *single;
      REQUIRE(a.shape() == b.shape());
      const float* x = a.data<float>();
      const float* y = b.data<float>();
      double worst = 0;
      for (int64_t k = 0; k < a.numel(); ++k) worst = std::max(worst, double(std::fabs(x[k] - y[k])));
      INFO("image " << i << " max abs diff " << worst);
      CHECK(worst <= 1e-4);  // CPU f32: the same sums per row; only the GEMM blocking may differ with B
    }
    // A second pass with the same prompts encodes nothing new.
    const int64_t misses = cache.misses();
    REQUIRE((*pipe)->generate_batch(ctx, q, {images[1]}, &cache, quiet));
    CHECK(cache.misses() == misses);
  }
}

TEST_CASE("batch: an unwritable output directory is a clear error before any work", "[batch]") {
  const std::string dir = test::make_temp_dir("batch_unwritable");
  const std::string prompts = write_prompts(dir, std::string(kRed) + "\n");
  std::ofstream(dir + "/a_file") << "x";
  auto r = test::run_ditrun("batch --prompts " + test::q(prompts) + " --out-dir " + test::q(dir + "/a_file/out"));
  CHECK(r.rc == 4);
  CHECK(r.stderr_text.find("cannot create output directory " + dir + "/a_file/out") != std::string::npos);

  // A directory that exists but takes no files: read-only for a normal user; root ignores modes, so
  // then a sysfs directory (no files can be created there by anyone).
  std::string ro = dir + "/ro";
  fs::create_directories(ro);
  if (::geteuid() == 0) ro = fs::is_directory("/sys/kernel") ? "/sys/kernel" : "";
  else fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
  if (!ro.empty()) {
    r = test::run_ditrun("batch --prompts " + test::q(prompts) + " --out-dir " + test::q(ro));
    CHECK(r.rc == 4);
    CHECK(r.stderr_text.find("output directory " + ro + " is not writable") != std::string::npos);
  }
  r = test::run_ditrun("batch --prompts " + test::q(dir + "/missing.txt") + " --out-dir " + test::q(dir + "/o"));
  CHECK(r.rc == 2);
  CHECK(r.stderr_text.find("cannot open prompts file") != std::string::npos);
  r = test::run_ditrun("batch --prompts " + test::q(prompts) + " --out-dir " + test::q(dir + "/o") + " --batch-size 0");
  CHECK(r.rc == 2);
  r = test::run_ditrun("batch --prompts " + test::q(prompts) + " --out-dir " + test::q(dir + "/o") + " -W 50");
  CHECK(r.rc == 2);
  CHECK(r.stderr_text.find("--width 50 is not a multiple of 16") != std::string::npos);
  fs::permissions(dir + "/ro", fs::perms::owner_all);
  fs::remove_all(dir);
}

TEST_CASE("batch: a failed image write (full disk) stops the batch, leaves no partial file, says why", "[batch]") {
  // Batch size 2 writes both images of the pass at once (one thread each): the failure must still stop the
  // batch with one error line and no file.
  for (const int batch_size : {1, 2}) {
    INFO("batch size " << batch_size);
    const std::string dir = test::make_temp_dir("batch_full");
    const std::string out = dir + "/out";
    const std::string prompts = write_prompts(dir, std::string(kRed) + "\nsecond prompt\n");
    fs::create_directories(out);
    int fd = -1;
    // 64x64 PNGs are 5-11 KB; the manifest's error line is below 1 KB.
    const pid_t pid = spawn_ditrun({"batch", "--prompts", prompts, "--out-dir", out, "-W", "64", "-H", "64", "--steps", "1",
                                    "--batch-size", std::to_string(batch_size), "--quiet", "--log-json"},
                                   dir + "/stderr.txt", &fd, 4096);
    std::string text;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) text.append(buf, size_t(n));
    ::close(fd);
    const int rc = wait_exit(pid);
    std::ifstream in(dir + "/stderr.txt");
    std::stringstream err;
    err << in.rdbuf();
    INFO(err.str());
    CHECK(rc == 4);
    CHECK(err.str().find("File too large") != std::string::npos);
    CHECK(pngs_in(out).empty());
    for (const auto& e : fs::directory_iterator(out)) CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
    const auto manifest = read_manifest(out);
    REQUIRE(manifest.size() == 1);
    CHECK(manifest[0]["status"] == "error");
    CHECK(manifest[0]["error"].get<std::string>().find("File too large") != std::string::npos);
    const auto fin = events(read_jsonl(text), "finished");
    REQUIRE(fin.size() == 1);
    CHECK(fin[0]["stopped"].get<std::string>().find("File too large") != std::string::npos);
    CHECK(fin[0]["not_run"] == (batch_size == 1 ? 1 : 0));
    fs::remove_all(dir);
  }
}

// As generate: a sparse method that cannot beat dense (GNA 8x8 on 256²'s 16x16 token grid: tile density
// above 0.5) runs dense, said once on stderr; --no-attention-fallback runs the method itself.
TEST_CASE("batch: the automatic attention fallback, and --no-attention-fallback", "[batch]") {
  const std::string dir = test::make_temp_dir("batch_fallback");
  const std::string prompts = write_prompts(dir, std::string(kRed) + "\n");
  // The pixels (the PNG's parameters chunk names the method, so the files differ anyway).
  auto pixels = [&](const std::string& name, const std::string& flags) {
    const std::string out = dir + "/" + name;
    const test::RunResult r = test::run_ditrun("batch --prompts " + test::q(prompts) + " --out-dir " + test::q(out) +
                                               " -W 256 -H 256 --steps 2 " + flags);
    INFO(r.out);
    REQUIRE(r.rc == 0);
    const auto m = read_manifest(out);
    REQUIRE(m.size() == 1);
    int w = 0, h = 0;
    auto px = app::read_png_rgb8(out + "/" + fs::path(m[0]["output"].get<std::string>()).filename().string(), &w, &h);
    REQUIRE(px);
    return std::make_pair(std::move(px.value()), r.stderr_text);
  };
  const auto dense = pixels("dense", "");
  const auto fallback = pixels("fallback", "--attention gna:window=1x8x8,stride=1x4x4");
  const auto sparse = pixels("sparse", "--attention gna:window=1x8x8,stride=1x4x4 --no-attention-fallback");
  CHECK(fallback.first == dense.first);
  CHECK(fallback.second.find("falls back to dense") != std::string::npos);
  CHECK(sparse.first != dense.first);
  fs::remove_all(dir);
}
