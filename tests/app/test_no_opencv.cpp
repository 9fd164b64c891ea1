// Builds without OpenCV (DITRUN_OPENCV=OFF) leave the evaluator out: `ditrun evaluate` must fail with one
// message that says why and what to install, whatever flags it gets, and generate must still work.
#include <filesystem>

#include "harness/run.h"
#include "harness/safetensors_writer.h"

#include <catch2/catch.hpp>

TEST_CASE("evaluate without OpenCV: a clear error and a failure exit code", "[cli][evaluate]") {
  for (const char* args : {"evaluate", "evaluate --prompts p.jsonl --images .", "evaluate -v --json x.json"}) {
    const auto r = test::run_ditrun(args);
    INFO(args << "\n" << r.out);
    CHECK(r.rc == 1);
    CHECK(r.stderr_text.find("built without OpenCV") != std::string::npos);
    CHECK(r.stderr_text.find("libopencv-core-dev") != std::string::npos);
    CHECK(r.stdout_text.empty());
  }
  const auto help = test::run_ditrun("evaluate --help");
  CHECK(help.rc == 0);
  CHECK(help.out.find("without OpenCV") != std::string::npos);
}

TEST_CASE("generate without OpenCV: the embedded model still draws", "[cli][embedded]") {
  const std::string dir = test::make_temp_dir("no_opencv");
  const std::string out = dir + "/circle.png";
  const auto r = test::run_ditrun("generate -q --steps 2 --prompt 'a large red circle at the left on a blue "
                                  "background' --out " + test::q(out));
  INFO(r.out);
  CHECK(r.rc == 0);
  CHECK(std::filesystem::exists(out));
  std::filesystem::remove_all(dir);
}
