// Device out-of-memory: the one failure deep inside an op that the user can act on (smaller image,
// --offload, --vae-tile), so it travels as an exception up to the command, which prints it and exits
// with a non-zero code. Every other op failure is a bug and aborts through CHECK.
#pragma once
#include <stdexcept>
#include <string>

namespace rt {
class OutOfMemory : public std::runtime_error {
 public:
  explicit OutOfMemory(const std::string& what) : std::runtime_error(what) {}
};
}  // namespace rt
