// The GPU half of rt::StagedUpload (staged_upload.h): two pinned host buffers, each with an event
// recorded after the last copy that reads it, filled and copied in turns on the context's stream.
#pragma once
#include <cstddef>

#include <cuda_runtime_api.h>

#include "staged_upload.h"

namespace rt::cuda {

class PinnedStaging {
 public:
  PinnedStaging(const Context& ctx, size_t buffer_bytes);
  ~PinnedStaging();
  PinnedStaging(const PinnedStaging&) = delete;
  PinnedStaging& operator=(const PinnedStaging&) = delete;

  void write(const Tensor& dst, const ProduceFn& produce, UploadStats* stats);

 private:
  void next_buffer(UploadStats* stats);

  static constexpr int kBuffers = 2;
  const Context* ctx_;
  size_t size_ = 0;
  bool pinned_ = true;  // false when cudaHostAlloc failed: plain memory, copies then stage through the driver
  char* buf_[kBuffers] = {};
  cudaEvent_t done_[kBuffers] = {};
  int cur_ = 0;
  size_t used_ = 0;  // bytes of buf_[cur_] holding queued copies
};

}  // namespace rt::cuda
