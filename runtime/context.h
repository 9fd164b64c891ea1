// Context: everything an op needs besides its tensors (device, compute dtype, threads, logging, and on a
// GPU the stream, library handles and memory pool). Passed explicitly; ditrun has no global mutable state.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>

#include "base/log.h"
#include "base/status.h"
#include "tensor.h"

namespace rt {

namespace cuda {
struct DeviceState;  // runtime/cuda/device_state.h; exists only in CUDA builds
}

struct ContextOptions {
  Device device;
  int num_threads = 0;  // CPU threads, 0 = all hardware threads
  LogLevel log_level = LogLevel::Info;
  // Float dtype of weights and activations on this device: f32 on the CPU (the reference); f32, bf16 or
  // f16 on a GPU, where norms, softmax and reductions still accumulate in f32.
  DType dtype = DType::F32;
  // GPU: synchronize after every op and name the op whose kernel failed (slow; for debugging).
  bool debug_sync = false;
};

class Context {
 public:
  // A CPU context (CHECKs that opts.device is the CPU and the dtype f32).
  explicit Context(ContextOptions opts = {});
  // Any device; a GPU that is absent or unusable is an error that says why.
  static Result<Context> create(ContextOptions opts);

  Device device() const { return opts_.device; }
  DType dtype() const { return opts_.dtype; }
  int num_threads() const { return threads_; }
  LogLevel log_level() const { return opts_.log_level; }
  bool verbose() const { return opts_.log_level >= LogLevel::Debug; }
  bool debug_sync() const { return opts_.debug_sync; }
  bool is_cuda() const { return opts_.device.is_cuda(); }
  // The GPU's stream, handles and pool (CHECKs that this is a GPU context).
  cuda::DeviceState& cuda() const;

  // Runs f(begin, end) over [0, n) split into contiguous chunks across the context's threads.
  // Chunks never overlap, so f may write disjoint outputs without locking.
  // `grain` is the least number of items worth a thread of its own (small jobs stay serial).
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& f, int64_t grain = 1) const;

 private:
  Context(ContextOptions opts, std::shared_ptr<cuda::DeviceState> state);
  ContextOptions opts_;
  int threads_ = 1;
  std::shared_ptr<cuda::DeviceState> cuda_;
};

// Bytes of device memory held by a context's pool: now, and the high-water mark (rt::memory_stats).
struct MemoryStats {
  size_t in_use = 0, peak = 0;
};

// Whether this binary has the CUDA backend compiled in.
bool cuda_built();

}  // namespace rt
