#include "cuda/device_state.h"

#include <cstdio>
#include <cstdlib>

#include "cuda/common.h"

namespace rt::cuda {

void cuda_failed(const char* expr, const char* file, int line, const char* what) {
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

void* DeviceState::allocate(size_t bytes) {
  void* p = nullptr;
  if (bytes == 0) bytes = 1;
  const cudaError_t e = cudaMallocFromPoolAsync(&p, bytes, pool, stream);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear the sticky-free error so later calls are not blamed
    return nullptr;
  }
  DITRUN_CUDA_CHECK(e);
  return p;
}

void DeviceState::free(void* p) { DITRUN_CUDA_CHECK(cudaFreeAsync(p, stream)); }

size_t DeviceState::bytes_in_use() const {
  uint64_t v = 0;
  DITRUN_CUDA_CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &v));
  return size_t(v);
}

size_t DeviceState::peak_bytes() const {
  uint64_t v = 0;
  DITRUN_CUDA_CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &v));
  return size_t(v);
}

void DeviceState::reset_peak() {
  uint64_t zero = 0;
  DITRUN_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &zero));
}

}  // namespace rt::cuda
