// Choosing among ways to run one operation (library algorithms, cuDNN plans) by timing them once on the
// real operands. Host-only header.
#pragma once
#include <cstdint>
#include <functional>

#include <cuda_runtime_api.h>

namespace rt::cuda {

// launch(i) enqueues way i on `stream` and returns false when it cannot run. Each way that runs is warmed
// once, then timed three times with events (median). Returns the fastest index, or -1 when none ran.
// While `stream` is being captured into a CUDA graph (cuda/graph.h) events cannot be waited on and every
// run would be recorded into the graph: then nothing is launched and 0 comes back, the first way,
// untimed; callers should keep the choice open for the next eager call rather than cache it.
int64_t fastest_launch(cudaStream_t stream, int64_t count, const std::function<bool(int64_t)>& launch);

}  // namespace rt::cuda
