#include "cuda/timing.h"

#include <algorithm>

#include "cuda/common.h"

namespace rt::cuda {

int64_t fastest_launch(cudaStream_t stream, int64_t count, const std::function<bool(int64_t)>& launch) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  DITRUN_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  if (capture != cudaStreamCaptureStatusNone) return count > 0 ? 0 : -1;
  cudaEvent_t start, stop;
  DITRUN_CUDA_CHECK(cudaEventCreate(&start));
  DITRUN_CUDA_CHECK(cudaEventCreate(&stop));
  int64_t best = -1;
  float best_ms = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (!launch(i)) continue;
    float ms[3];
    for (float& t : ms) {
      DITRUN_CUDA_CHECK(cudaEventRecord(start, stream));
      CHECK(launch(i), "fastest_launch: way ", i, " ran once, then failed");
      DITRUN_CUDA_CHECK(cudaEventRecord(stop, stream));
      DITRUN_CUDA_CHECK(cudaEventSynchronize(stop));
      DITRUN_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
    }
    std::sort(ms, ms + 3);
    if (best < 0 || ms[1] < best_ms) {
      best = i;
      best_ms = ms[1];
    }
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return best;
}

}  // namespace rt::cuda
