#include "cuda/staging.h"

#include <algorithm>
#include <chrono>

#include "cuda/common.h"
#include "cuda/device_state.h"

namespace rt::cuda {

static double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Each tensor starts on this boundary in a buffer, so copies read aligned source memory.
static constexpr size_t kAlign = 256;
// A used buffer with less room than this (and than what is left to write) is handed to the copy engine
// as it is: a sliver would cost a call and a copy for a few bytes.
static constexpr size_t kMinPiece = size_t(1) << 20;

PinnedStaging::PinnedStaging(const Context& ctx, size_t buffer_bytes)
    : ctx_(&ctx), size_((buffer_bytes + kAlign - 1) / kAlign * kAlign) {
  CHECK(size_ >= kAlign, "PinnedStaging: buffer of ", buffer_bytes, " bytes");
  for (int b = 0; b < kBuffers && pinned_; ++b) {
    void* p = nullptr;
    if (cudaHostAlloc(&p, size_, cudaHostAllocDefault) == cudaSuccess) {
      buf_[b] = static_cast<char*>(p);
      continue;
    }
    cudaGetLastError();  // clear it: plain buffers still work, at pageable speed
    pinned_ = false;
    for (int k = 0; k < b; ++k) cudaFreeHost(buf_[k]);
  }
  for (int b = 0; b < kBuffers; ++b) {
    if (!pinned_) buf_[b] = new char[size_];
    DITRUN_CUDA_CHECK(cudaEventCreateWithFlags(&done_[b], cudaEventDisableTiming));
  }
}

PinnedStaging::~PinnedStaging() {
  // No throwing checks in a destructor: errors here would have surfaced at the next synchronize anyway.
  cudaEventRecord(done_[cur_], ctx_->cuda().stream);
  for (int b = 0; b < kBuffers; ++b) {
    cudaEventSynchronize(done_[b]);
    cudaEventDestroy(done_[b]);
    if (pinned_) cudaFreeHost(buf_[b]);
    else delete[] buf_[b];
  }
}

void PinnedStaging::next_buffer(UploadStats* stats) {
  DITRUN_CUDA_CHECK(cudaEventRecord(done_[cur_], ctx_->cuda().stream));
  cur_ = (cur_ + 1) % kBuffers;
  used_ = 0;
  // An event never recorded (the first round) completes at once.
  const auto t0 = std::chrono::steady_clock::now();
  DITRUN_CUDA_CHECK(cudaEventSynchronize(done_[cur_]));
  stats->wait_seconds += seconds_since(t0);
}

void PinnedStaging::write(const Tensor& dst, const ProduceFn& produce, UploadStats* stats) {
  if (ctx_->cuda().capturing) throw CaptureError("a staged host-to-device upload during a CUDA graph capture");
  const size_t total = dst.nbytes(), es = dtype_size(dst.dtype());
  char* out = static_cast<char*>(dst.raw_data());
  cudaStream_t stream = ctx_->cuda().stream;
  size_t off = 0;
  used_ = (used_ + kAlign - 1) / kAlign * kAlign;
  while (off < total) {
    const size_t room = used_ < size_ ? (size_ - used_) / es * es : 0;
    if (room == 0 || (used_ > 0 && room < kMinPiece && room < total - off)) {
      next_buffer(stats);
      continue;
    }
    const size_t n = std::min(room, total - off);
    char* stage = buf_[cur_] + used_;
    const auto t0 = std::chrono::steady_clock::now();
    produce(stage, off, n);
    stats->produce_seconds += seconds_since(t0);
    DITRUN_CUDA_CHECK(cudaMemcpyAsync(out + off, stage, n, cudaMemcpyHostToDevice, stream));
    used_ += n;
    off += n;
  }
}

}  // namespace rt::cuda
