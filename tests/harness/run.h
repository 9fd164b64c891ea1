// Runs the ditrun binary (or any command) for CLI-level tests and captures its exit code and output.
#pragma once
#include <string>

namespace test {

struct RunResult {
  int rc = -1;
  std::string out;         // stdout then stderr, for searching messages
  std::string stdout_text;  // stdout alone
  std::string stderr_text;  // stderr alone
};

// `args` is appended to the ditrun binary path; it is passed to /bin/sh, so quote paths.
RunResult run_ditrun(const std::string& args);
// Single-quotes a path for the shell.
std::string q(const std::string& s);

}  // namespace test
