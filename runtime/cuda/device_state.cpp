#include "cuda/device_state.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cuda/common.h"

namespace rt::cuda {

// The errors a call returns only because its stream is being captured (cudaGetErrorString's text is all
// cuda_failed receives).
static bool is_capture_error(const char* what) {
  for (cudaError_t e : {cudaErrorStreamCaptureUnsupported, cudaErrorStreamCaptureInvalidated, cudaErrorStreamCaptureMerge,
                        cudaErrorStreamCaptureUnmatched, cudaErrorStreamCaptureUnjoined, cudaErrorStreamCaptureIsolation,
                        cudaErrorStreamCaptureImplicit, cudaErrorCapturedEvent, cudaErrorStreamCaptureWrongThread})
    if (std::strcmp(what, cudaGetErrorString(e)) == 0) return true;
  return false;
}

void cuda_failed(const char* expr, const char* file, int line, const char* what) {
  if (is_capture_error(what))
    throw CaptureError(std::string(expr) + " (" + file + ":" + std::to_string(line) + "): " + what);
  std::fprintf(stderr, "ditrun: CUDA call failed at %s:%d\n  %s\n  -> %s\n", file, line, expr, what);
  std::fprintf(stderr, "  (run with DITRUN_CUDA_DEBUG=1 / --debug-sync to synchronize after every op and name it)\n");
  std::abort();
}

// cuBLASLt picks faster kernels with a workspace; 32 MiB is what cuBLAS recommends for Hopper.
static constexpr size_t kCublasLtWorkspace = size_t(32) << 20;

Result<std::shared_ptr<DeviceState>> DeviceState::create(int device, bool debug_sync) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0)
    return Status::error(std::string("no usable CUDA device (cudaGetDeviceCount: ") +
                         (e == cudaSuccess ? "0 devices" : cudaGetErrorString(e)) +
                         "); check the NVIDIA driver with nvidia-smi, or use --device cpu");
  if (device < 0 || device >= count)
    return Status::error("CUDA device " + std::to_string(device) + " does not exist: this machine has " +
                         std::to_string(count) + " (cuda:0..cuda:" + std::to_string(count - 1) + ")");
  DITRUN_CUDA_CHECK(cudaSetDevice(device));
  cudaDeviceProp prop{};
  DITRUN_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  if (prop.major < 8)
    return Status::error(std::string(prop.name) + " has compute capability " + std::to_string(prop.major) + "." +
                         std::to_string(prop.minor) + "; ditrun's CUDA backend needs 8.0 or newer (bf16 tensor cores)");
  auto s = std::make_shared<DeviceState>();
  s->device = device;
  s->debug_sync = debug_sync;
  s->cc_major = prop.major;
  s->cc_minor = prop.minor;
  s->sm_count = prop.multiProcessorCount;
  s->name = std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ", " +
            std::to_string(prop.multiProcessorCount) + " SMs, " + std::to_string(prop.totalGlobalMem >> 30) + " GiB)";
  DITRUN_CUDA_CHECK(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking));

  cudaMemPoolProps props{};
  props.allocType = cudaMemAllocationTypePinned;
  props.location.type = cudaMemLocationTypeDevice;
  props.location.id = device;
  DITRUN_CUDA_CHECK(cudaMemPoolCreate(&s->pool, &props));
  uint64_t keep_all = UINT64_MAX;  // never hand freed memory back to the driver between steps
  DITRUN_CUDA_CHECK(cudaMemPoolSetAttribute(s->pool, cudaMemPoolAttrReleaseThreshold, &keep_all));

  DITRUN_CUBLAS_CHECK(cublasLtCreate(&s->cublaslt));
  s->cublaslt_workspace_bytes = kCublasLtWorkspace;
  DITRUN_CUDA_CHECK(cudaMalloc(&s->cublaslt_workspace, s->cublaslt_workspace_bytes));
  DITRUN_CUDNN_CHECK(cudnnCreate(&s->cudnn));
  DITRUN_CUDNN_CHECK(cudnnSetStream(s->cudnn, s->stream));
  return s;
}

DeviceState::~DeviceState() {
  cudaSetDevice(device);
  if (stream) cudaStreamSynchronize(stream);
  plans.clear();
  if (cudnn) cudnnDestroy(cudnn);
  if (cublaslt) cublasLtDestroy(cublaslt);
  if (cublaslt_workspace) cudaFree(cublaslt_workspace);
  if (pool) cudaMemPoolDestroy(pool);
  if (stream) cudaStreamDestroy(stream);
}

// During a capture, cudaMallocFromPoolAsync / cudaFreeAsync on the capturing stream become graph
// allocation / free nodes (CUDA runtime API notes on both calls): the memory is owned by the graph, not
// by the pool, keeps one virtual address for all replays, and is backed by the device's graph memory,
// which the driver maps when the executable graph first runs and keeps until the graph is destroyed
// and cudaDeviceGraphMemTrim is called (Graph::reset). A free node must name an allocation of the same
// graph, so every tensor made during a capture must die in it and nothing older may be released in it.
void* DeviceState::allocate(size_t bytes) {
  void* p = nullptr;
  if (bytes == 0) bytes = 1;
  const cudaError_t e = cudaMallocFromPoolAsync(&p, bytes, pool, stream);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear the sticky-free error so later calls are not blamed
    return nullptr;
  }
  DITRUN_CUDA_CHECK(e);
  if (capturing) capture_allocations_.insert(p);
  return p;
}

void DeviceState::free(void* p) {
  if (!orphans_.empty() && orphans_.erase(p) > 0) return;  // its graph was discarded before ever running
  if (!capturing) {
    DITRUN_CUDA_CHECK(cudaFreeAsync(p, stream));
    return;
  }
  if (capture_allocations_.erase(p) == 0) {
    // Pool memory older than the capture: a replay would free it again, so it waits for the end of the
    // capture, which is discarded.
    deferred_frees_.push_back(p);
    if (capture_refusal.empty()) capture_refusal = "a tensor made before the capture was released during it";
    return;
  }
  const cudaError_t e = cudaFreeAsync(p, stream);
  if (e != cudaSuccess) {  // an invalidated capture; the graph and its allocations are discarded
    cudaGetLastError();
    if (capture_refusal.empty()) capture_refusal = std::string("cudaFreeAsync during the capture: ") + cudaGetErrorString(e);
  }
}

size_t DeviceState::pool_used() const {
  uint64_t v = 0;
  DITRUN_CUDA_CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &v));
  return size_t(v);
}

size_t DeviceState::pool_peak() const {
  uint64_t v = 0;
  DITRUN_CUDA_CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &v));
  return size_t(v);
}

static size_t graph_memory(int device, cudaGraphMemAttributeType attr) {
  uint64_t v = 0;
  DITRUN_CUDA_CHECK(cudaDeviceGetGraphMemAttribute(device, attr, &v));
  return size_t(v);
}

// The graph attributes are per device, so they are counted only once this context captured a graph.
size_t DeviceState::bytes_in_use() const {
  return pool_used() + (graph_memory_ ? graph_memory(device, cudaGraphMemAttrUsedMemCurrent) : 0);
}

// The pool's high-water mark restarts at each capture (begin_capture keeps the earlier peak in
// peak_floor_); a graph's memory stays mapped while its executable graph lives, so it is added whole.
size_t DeviceState::peak_bytes() const {
  size_t p = std::max(pool_peak(), pool_used());
  if (graph_memory_)
    p += std::max(graph_memory(device, cudaGraphMemAttrUsedMemHigh), graph_memory(device, cudaGraphMemAttrUsedMemCurrent));
  return std::max(p, peak_floor_);
}

void DeviceState::reset_peak() {
  uint64_t zero = 0;
  DITRUN_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &zero));
  if (graph_memory_) DITRUN_CUDA_CHECK(cudaDeviceSetGraphMemAttribute(device, cudaGraphMemAttrUsedMemHigh, &zero));
  peak_floor_ = 0;
}

std::string DeviceState::begin_capture() {
  CHECK(!capturing, "begin_capture: a capture is already under way on ", name);
  DITRUN_CUDA_CHECK(cudaStreamSynchronize(stream));  // queued frees happen, so the trim can return their blocks
  peak_floor_ = std::max(peak_floor_, peak_bytes());
  DITRUN_CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
  uint64_t zero = 0;
  DITRUN_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &zero));
  graph_memory_ = true;
  // Thread-local: a call this thread must not make while capturing (a synchronize, a cudaMalloc) fails
  // and invalidates the capture instead of running outside the graph; other threads are not affected.
  const cudaError_t e = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(e);
  }
  capture_refusal.clear();
  capturing = true;
  return "";
}

cudaGraph_t DeviceState::end_capture(std::string* why) {
  CHECK(capturing, "end_capture without begin_capture on ", name);
  cudaGraph_t graph = nullptr;
  const cudaError_t e = cudaStreamEndCapture(stream, &graph);
  capturing = false;
  *why = capture_refusal;
  capture_refusal.clear();
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (why->empty()) *why = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(e);
  }
  if (!capture_allocations_.empty() && why->empty())
    *why = std::to_string(capture_allocations_.size()) + " tensors made during the capture outlive it";
  orphans_.insert(capture_allocations_.begin(), capture_allocations_.end());
  capture_allocations_.clear();
  for (void* p : deferred_frees_) DITRUN_CUDA_CHECK(cudaFreeAsync(p, stream));
  deferred_frees_.clear();
  if (!why->empty() && graph != nullptr) {
    DITRUN_CUDA_CHECK(cudaGraphDestroy(graph));
    graph = nullptr;
  }
  return graph;
}

}  // namespace rt::cuda
