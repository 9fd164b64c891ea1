// Log levels. The level lives in the caller's Context (no global logger state); commands decide what
// to print at each level.
#pragma once

namespace rt {
enum class LogLevel { Quiet = 0, Info = 1, Debug = 2 };
}  // namespace rt
