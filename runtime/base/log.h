// Leveled logging to stderr. The level lives in the caller's Context (no global logger state); these
// helpers just format.
#pragma once
#include <cstdio>
#include <string>

namespace rt {
enum class LogLevel { Quiet = 0, Info = 1, Debug = 2 };

template <typename... Args>
void log_line(const char* fmt, Args... args) {
  std::fprintf(stderr, fmt, args...);
  std::fputc('\n', stderr);
}
}  // namespace rt
