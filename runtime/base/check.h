// Invariant checks: a failed CHECK is a bug in ditrun, not a user error. It aborts with file:line,
// the condition and the offending values. User-facing failures use Status (status.h) instead.
#pragma once
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

namespace rt::detail {
template <typename... Args>
std::string concat_message(Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace rt::detail

#define DITRUN_CHECK(cond, ...)                                                                   \
  do {                                                                                            \
    if (!(cond)) ::rt::detail::check_failed(__FILE__, __LINE__, #cond,                            \
                                            ::rt::detail::concat_message("" __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)

// Sources use the short name; headers spell DITRUN_CHECK so that test files, where CHECK is Catch2's
// macro (the harness defines DITRUN_NO_SHORT_CHECK), can include them.
#ifndef DITRUN_NO_SHORT_CHECK
#define CHECK(cond, ...) DITRUN_CHECK(cond __VA_OPT__(, ) __VA_ARGS__)
#endif
