#include "app/batch/chunks.h"

#include <algorithm>

#include "base/out_of_memory.h"

namespace app {

size_t run_in_chunks(const std::vector<size_t>& jobs, int* batch_size, const ChunkCallbacks& cb) {
  size_t next = 0;
  while (next < jobs.size()) {
    if (cb.stop && cb.stop()) return jobs.size() - next;
    const size_t n = std::min(jobs.size() - next, size_t(std::max(1, *batch_size)));
    const std::vector<size_t> chunk(jobs.begin() + std::ptrdiff_t(next), jobs.begin() + std::ptrdiff_t(next + n));
    try {
      cb.run(chunk);
    } catch (const rt::OutOfMemory& e) {
      if (n > 1) {
        const int smaller = int(n / 2);
        if (cb.shrink) cb.shrink(int(n), smaller, e.what());
        *batch_size = smaller;
        continue;  // the same images again, in smaller passes
      }
      if (cb.out_of_memory) cb.out_of_memory(chunk[0], e.what());
    }
    next += n;
  }
  return 0;
}

}  // namespace app
