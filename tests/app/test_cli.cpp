// CLI behaviour on good and bad input: exit codes (README), one clear message, no output file left.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness/run.h"
#include "harness/safetensors_writer.h"
#include "weights/store.h"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;

static const std::string kTiny = std::string(DITRUN_FIXTURES_DIR) + "/e2e/tiny-flux";

static std::string gen(const std::string& extra) {
  return "generate -q --prompt 'a red circle' --width 64 --height 64 --steps 2 " + extra;
}

// A writable copy of the tiny pipeline that a test may damage.
static std::string copy_tiny(const std::string& dir) {
  const std::string dst = dir + "/tiny-flux";
  fs::copy(kTiny, dst, fs::copy_options::recursive);
  return dst;
}

static std::string transformer_file(const std::string& model) {
  for (const auto& e : fs::directory_iterator(model + "/transformer"))
    if (e.path().extension() == ".safetensors") return e.path().string();
  FAIL("no transformer safetensors in " << model);
  return "";
}

TEST_CASE("help and version exit 0", "[cli]") {
  for (const char* args : {"--help", "generate --help", "parity --help", "inspect --help", "--version"}) {
    const auto r = test::run_ditrun(args);
    INFO(args << "\n" << r.out);
    CHECK(r.rc == 0);
  }
  const auto r = test::run_ditrun("");
  CHECK(r.rc == 2);
  CHECK(test::run_ditrun("frobnicate").rc == 2);
  CHECK(test::run_ditrun("generate --prompt x --bogus-flag").rc == 2);
}

TEST_CASE("invalid sizes are refused with the nearest valid ones", "[cli]") {
  const std::string dir = test::make_temp_dir("cli_size");
  const std::string out = dir + "/o.png";
  auto r = test::run_ditrun("generate --model " + test::q(kTiny) + " --prompt x --width 1000 --height 64 --out " + test::q(out));
  INFO(r.out);
  CHECK(r.rc == 2);
  CHECK(r.out.find("--width 1000 is not a multiple of 16") != std::string::npos);
  CHECK(r.out.find("992 or 1008") != std::string::npos);
  r = test::run_ditrun("generate --model " + test::q(kTiny) + " --prompt x --width 64 --height 8 --out " + test::q(out));
  CHECK(r.rc == 2);
  r = test::run_ditrun("generate --model " + test::q(kTiny) + " --prompt x --width 64 --height 72 --out " + test::q(out));
  CHECK(r.rc == 2);
  CHECK(r.out.find("64 or 80") != std::string::npos);
  CHECK_FALSE(fs::exists(out));
  fs::remove_all(dir);
}

TEST_CASE("empty prompt, bad numbers", "[cli]") {
  const std::string dir = test::make_temp_dir("cli_prompt");
  const std::string out = dir + "/o.png";
  auto r = test::run_ditrun("generate --model " + test::q(kTiny) + " --prompt '   ' --out " + test::q(out));
  INFO(r.out);
  CHECK(r.rc == 2);
  CHECK(r.out.find("--prompt is empty") != std::string::npos);
  CHECK(test::run_ditrun("generate --model " + test::q(kTiny) + " --prompt x --steps -1 --out " + test::q(out)).rc == 2);
  CHECK(test::run_ditrun("generate --model " + test::q(kTiny) + " --prompt x --true-cfg 0.5 --out " + test::q(out)).rc == 2);
  CHECK_FALSE(fs::exists(out));
  fs::remove_all(dir);
}

TEST_CASE("bench-attention refuses bad numbers before it looks for a GPU", "[cli]") {
  for (const char* bad : {"--steady-seconds -1", "--repeat 0", "--dim 96"}) {
    const auto r = test::run_ditrun(std::string("bench-attention ") + bad);
    INFO(bad << ": " << r.out);
    CHECK(r.rc == 2);
    // A build without the CUDA backend refuses the command itself.
    if (r.out.find("no CUDA backend") == std::string::npos)
      CHECK(r.out.find("--steady-seconds >= 0") != std::string::npos);
  }
}

TEST_CASE("output paths: existing file kept, unwritable refused", "[cli]") {
  const std::string dir = test::make_temp_dir("cli_out");
  const std::string out = dir + "/mine.png";
  { std::ofstream(out) << "user data"; }
  auto r = test::run_ditrun(gen("--model " + test::q(kTiny) + " --out " + test::q(out)));
  INFO(r.out);
  CHECK(r.rc == 4);
  CHECK(r.out.find("--overwrite") != std::string::npos);
  std::ifstream in(out);
  std::string content((std::istreambuf_iterator<char>(in)), {});
  CHECK(content == "user data");
  r = test::run_ditrun(gen("--model " + test::q(kTiny) + " --out " + test::q(dir + "/no/such/dir/x.png")));
  CHECK(r.rc == 4);
  r = test::run_ditrun(gen("--model " + test::q(kTiny) + " --out " + test::q(dir + "/x.jpg")));
  CHECK(r.rc == 4);
  r = test::run_ditrun(gen("--model " + test::q(kTiny) + " --overwrite --out " + test::q(out)));
  CHECK(r.rc == 0);
  size_t files = 0;
  for (auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  CHECK(files == 1);  // no temporary left behind
  fs::remove_all(dir);
}

TEST_CASE("bad model paths and damaged checkpoints: exit 3, one message, no output", "[cli]") {
  const std::string dir = test::make_temp_dir("cli_model");
  const std::string out = dir + "/o.png";
  auto expect_model_error = [&](const std::string& args, const std::string& needle) {
    const auto r = test::run_ditrun(gen(args + " --out " + test::q(out)));
    INFO(args << "\n" << r.out);
    CHECK(r.rc == 3);
    CHECK(r.out.find(needle) != std::string::npos);
    CHECK(r.out.find("internal error") == std::string::npos);
    CHECK_FALSE(fs::exists(out));
  };
  expect_model_error("--model " + test::q(dir + "/nope"), "no such file or directory");
  expect_model_error("--model " + test::q(dir), "no model_index.json");

  SECTION("truncated transformer file") {
    const std::string m = copy_tiny(dir);
    const std::string f = transformer_file(m);
    fs::resize_file(f, fs::file_size(f) / 2);
    expect_model_error("--model " + test::q(m), "truncated");
  }
  SECTION("header that lies about sizes") {
    const std::string m = copy_tiny(dir);
    const std::string f = transformer_file(m);
    test::write_file(f, test::safetensors_image(R"({"x_embedder.weight":{"dtype":"F32","shape":[4,4],"data_offsets":[0,60]}})",
                                                std::string(64, '\0')));
    expect_model_error("--model " + test::q(m), "x_embedder.weight");
  }
  SECTION("missing tensor") {
    const std::string m = copy_tiny(dir);
    const std::string f = transformer_file(m);
    auto store = weights::TensorStore::open(f);
    REQUIRE(store.is_ok());
    std::vector<test::StTensor> kept;
    for (const std::string& n : store->names())
      if (n != "proj_out.bias") kept.push_back(test::st_from_tensor(n, store->load_f32(n)));
    test::write_safetensors(f + ".new", kept);
    fs::rename(f + ".new", f);
    expect_model_error("--model " + test::q(m), "proj_out.bias");
  }
  SECTION("checkpoint of another family") {
    expect_model_error("--model " + test::q(kTiny) + " --transformer " + test::q(kTiny + "/vae"),
                       "expects a Flux transformer");
  }
  fs::remove_all(dir);
}

TEST_CASE("parity runs every committed fixture and passes", "[cli][parity]") {
  std::string files;
  for (const auto& e : fs::directory_iterator(std::string(DITRUN_FIXTURES_DIR) + "/parity"))
    if (e.path().extension() == ".safetensors") files += " " + test::q(e.path().string());
  const auto r = test::run_ditrun("parity" + files);
  INFO(r.out);
  CHECK(r.rc == 0);
  CHECK(r.out.find("FAIL") == std::string::npos);
  CHECK(r.out.find("PASS") != std::string::npos);
}

TEST_CASE("parity rejects malformed fixtures and reports failures", "[cli][parity]") {
  const std::string dir = test::make_temp_dir("cli_parity");
  test::write_safetensors(dir + "/nomodule.safetensors", {test::st_f32("output.x", {1}, {1.f})});
  auto r = test::run_ditrun("parity " + test::q(dir + "/nomodule.safetensors"));
  INFO(r.out);
  CHECK(r.rc == 3);
  CHECK(r.out.find("module") != std::string::npos);
  test::write_safetensors(dir + "/unknown.safetensors", {test::st_f32("output.x", {1}, {1.f})}, {{"module", "warp_drive"}});
  r = test::run_ditrun("parity " + test::q(dir + "/unknown.safetensors"));
  CHECK(r.rc == 3);
  CHECK(r.out.find("unknown module 'warp_drive'") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("inspect reports family, layout and size", "[cli]") {
  auto r = test::run_ditrun("inspect " + test::q(kTiny));
  INFO(r.out);
  CHECK(r.rc == 0);
  CHECK(r.out.find("Flux transformer") != std::string::npos);
  CHECK(r.out.find("T5 encoder") != std::string::npos);
  CHECK(r.out.find("CLIP text encoder") != std::string::npos);
  CHECK(r.out.find("Flux autoencoder") != std::string::npos);
  r = test::run_ditrun("inspect --tensors " + test::q(kTiny + "/vae"));
  CHECK(r.rc == 0);
  CHECK(r.out.find("decoder.conv_in.weight") != std::string::npos);
  CHECK(test::run_ditrun("inspect /no/such/file").rc == 3);
}
