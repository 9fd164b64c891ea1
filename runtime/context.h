// Context: everything an op needs besides its tensors (device, threads, logging). Passed explicitly;
// ditrun has no global mutable state.
#pragma once
#include <cstdint>
#include <functional>

#include "base/log.h"
#include "tensor.h"

namespace rt {

struct ContextOptions {
  Device device;
  int num_threads = 0;  // 0 = all hardware threads
  LogLevel log_level = LogLevel::Info;
};

class Context {
 public:
  explicit Context(ContextOptions opts = {});
  Device device() const { return opts_.device; }
  int num_threads() const { return threads_; }
  LogLevel log_level() const { return opts_.log_level; }
  bool verbose() const { return opts_.log_level >= LogLevel::Debug; }

  // Runs f(begin, end) over [0, n) split into contiguous chunks across the context's threads.
  // Chunks never overlap, so f may write disjoint outputs without locking.
  // `grain` is the least number of items worth a thread of its own (small jobs stay serial).
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& f, int64_t grain = 1) const;

 private:
  ContextOptions opts_;
  int threads_ = 1;
};

}  // namespace rt
