// The per-context GPU state: device, one stream, the cuBLASLt and cuDNN handles, a cuBLASLt workspace,
// the stream-ordered memory pool every device tensor comes from, and caches of built library plans.
// Owned by rt::Context through a shared_ptr; device tensors keep it alive until they are freed.
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "base/status.h"

namespace rt::cuda {

// Thrown instead of aborting when a CUDA call fails because the stream is being captured into a graph
// (the cudaErrorStreamCapture* family, which nothing else returns): Graph::capture (cuda/graph.h)
// abandons the capture and its caller runs the work eagerly.
struct CaptureError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct DeviceState : std::enable_shared_from_this<DeviceState> {
  int device = 0;
  bool debug_sync = false;
  cudaStream_t stream = nullptr;
  cudaMemPool_t pool = nullptr;
  cublasLtHandle_t cublaslt = nullptr;
  void* cublaslt_workspace = nullptr;
  size_t cublaslt_workspace_bytes = 0;
  cudnnHandle_t cudnn = nullptr;
  std::string name;  // "NVIDIA H200 (sm_90, 132 SMs)"
  int sm_count = 0;
  int cc_major = 0, cc_minor = 0;

  // Built plans (cuDNN graphs, cuBLASLt algorithm choices) keyed by a string of their shapes; the
  // value's type is known to the file that stores it.
  std::mutex plans_mu;
  std::map<std::string, std::shared_ptr<void>> plans;

  // CUDA graph capture (cuda/graph.h) of `stream` under way: nothing may synchronize or time, so plan
  // choices that would be timed take their first candidate untimed and leave the timing to the next
  // eager call, and a plan that would have to be built refuses the capture instead (capture_refusal).
  bool capturing = false;
  // Why the capture under way cannot become a graph (empty: nothing so far). Graph::capture discards
  // the capture when set.
  std::string capture_refusal;

  static Result<std::shared_ptr<DeviceState>> create(int device, bool debug_sync);
  ~DeviceState();

  // Stream-ordered allocation from the pool; the pool keeps freed blocks, so a steady-state step
  // performs no cudaMalloc. Out of memory returns nullptr (callers turn it into an error). During a
  // capture both become graph memory nodes (see device_state.cpp).
  void* allocate(size_t bytes);
  void free(void* p);
  // Device memory held for tensors: the pool's, plus the graphs' own once this context made one.
  size_t bytes_in_use() const;
  size_t peak_bytes() const;  // high-water mark since creation or reset_peak()
  void reset_peak();

  // Graph::capture's halves (cuda/graph.h). begin_capture synchronizes, hands the pool's cached free
  // blocks back to the driver (a graph's temporaries live in the graphs' own memory, so the blocks would
  // otherwise double the activation memory), then starts capturing `stream` (thread-local mode) and
  // tracking allocations; returns "" or why it could not. end_capture stops the capture, frees what had
  // to wait, and returns the graph, or nullptr with the reason in *why when it must be discarded.
  std::string begin_capture();
  cudaGraph_t end_capture(std::string* why);

 private:
  std::unordered_set<void*> capture_allocations_;  // made during the capture, not yet freed
  std::vector<void*> deferred_frees_;              // pool memory released during the capture
  std::unordered_set<void*> orphans_;              // graph allocations of a discarded capture
  bool graph_memory_ = false;                      // a graph was captured: count graph memory too
  size_t peak_floor_ = 0;                          // the peak before the last capture's trim
  size_t pool_used() const;
  size_t pool_peak() const;
};

}  // namespace rt::cuda
