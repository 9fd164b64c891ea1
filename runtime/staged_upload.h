// StagedUpload: many host-to-device tensor writes (a model's weights) whose bytes a caller produces a
// chunk at a time, straight into pinned staging memory. On a GPU context two pinned buffers alternate:
// while the copy engine reads one (cudaMemcpyAsync on the context's stream), the producer fills the
// other, so the upload runs at about the slower of the producer and the bus instead of the few GB/s of a
// pageable cudaMemcpy, and no pageable host copy of a whole tensor is ever made. On a CPU context the
// producer writes the destination tensor in place.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>

#include "context.h"
#include "tensor.h"

namespace rt {

namespace cuda {
class PinnedStaging;
}

// Writes bytes [offset, offset + n) of the destination's contiguous image to `out`. offset and n are
// multiples of the destination's element size.
using ProduceFn = std::function<void(void* out, size_t offset, size_t n)>;

struct UploadStats {
  size_t bytes = 0;             // destination bytes written
  double produce_seconds = 0;   // inside producers: reading and converting on the host
  double wait_seconds = 0;      // waiting for a staging buffer's earlier copies to finish
};

class StagedUpload {
 public:
  // Size of each of the two pinned buffers on a GPU (nothing is allocated for a CPU context).
  static constexpr size_t kDefaultBufferBytes = size_t(64) << 20;
  explicit StagedUpload(const Context& ctx, size_t buffer_bytes = kDefaultBufferBytes);
  // Waits for the copies still reading the staging buffers, then frees them.
  ~StagedUpload();
  StagedUpload(const StagedUpload&) = delete;
  StagedUpload& operator=(const StagedUpload&) = delete;

  // dst: a contiguous tensor on the context's device. Returns once every byte of dst is produced and
  // its copies are queued on the context's stream, not when they are done: synchronize the context
  // before reading dst on the host. Not during a CUDA graph capture. One thread at a time.
  void write(const Tensor& dst, const ProduceFn& produce);
  const UploadStats& stats() const { return stats_; }

 private:
  const Context* ctx_;
  UploadStats stats_;
  std::unique_ptr<cuda::PinnedStaging> staging_;
};

}  // namespace rt
