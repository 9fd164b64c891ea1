// How one group's images are cut into batched passes, and what an out-of-memory does: the pass is
// retried with half the batch size (down to 1) and the smaller size is kept for the rest of the group;
// an image that does not fit even alone is reported and the group goes on.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace app {

struct ChunkCallbacks {
  // Generates the images of `chunk` (indices into the caller's jobs); may throw rt::OutOfMemory.
  std::function<void(const std::vector<size_t>& chunk)> run;
  // An image that ran out of memory at batch size 1: what the device said.
  std::function<void(size_t job, const std::string& what)> out_of_memory;
  // A smaller batch size after an out-of-memory: from, to, what the device said.
  std::function<void(int from, int to, const std::string& what)> shrink;
  // Checked before every pass: true stops the group (Ctrl-C, a fatal write error).
  std::function<bool()> stop;
};

// Runs `jobs` in passes of at most *batch_size images; *batch_size is lowered by out-of-memory retries.
// Returns the number of jobs not attempted because stop() said so.
size_t run_in_chunks(const std::vector<size_t>& jobs, int* batch_size, const ChunkCallbacks& cb);

}  // namespace app
