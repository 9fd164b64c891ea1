// The per-context GPU state: device, one stream, the cuBLASLt and cuDNN handles, a cuBLASLt workspace,
// the stream-ordered memory pool every device tensor comes from, and caches of built library plans.
// Owned by rt::Context through a shared_ptr; device tensors keep it alive until they are freed.
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "base/status.h"

namespace rt::cuda {

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

  static Result<std::shared_ptr<DeviceState>> create(int device, bool debug_sync);
  ~DeviceState();

  // Stream-ordered allocation from the pool; the pool keeps freed blocks, so a steady-state step
  // performs no cudaMalloc. Out of memory returns nullptr (callers turn it into an error).
  void* allocate(size_t bytes);
  void free(void* p);
  size_t bytes_in_use() const;
  size_t peak_bytes() const;  // high-water mark of the pool since creation or reset_peak()
  void reset_peak();
};

}  // namespace rt::cuda
