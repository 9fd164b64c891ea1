#include "harness/run.h"

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace test {

std::string q(const std::string& s) {
  std::string r = "'";
  for (char c : s) r += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return r + "'";
}

RunResult run_ditrun(const std::string& args) {
  // stderr goes to a file so stdout (e.g. the output path generate prints) can be checked alone.
  static int counter = 0;
  const std::string err_file = (std::filesystem::temp_directory_path() /
                                ("ditrun_stderr_" + std::to_string(getpid()) + "_" + std::to_string(counter++))).string();
  const std::string cmd = q(DITRUN_BINARY) + " " + args + " 2>" + q(err_file);
  RunResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.stdout_text.append(buf.data(), n);
  const int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream in(err_file);
  std::stringstream ss;
  ss << in.rdbuf();
  r.stderr_text = ss.str();
  std::filesystem::remove(err_file);
  r.out = r.stdout_text + r.stderr_text;
  return r;
}

}  // namespace test
