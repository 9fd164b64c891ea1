#include "context.h"

#include <algorithm>
#include <thread>
#include <vector>

#if DITRUN_WITH_CUDA
#include "cuda/device_state.h"
#endif

namespace rt {

static int resolve_threads(int requested) {
  const int hw = int(std::max(1u, std::thread::hardware_concurrency()));
  return requested > 0 ? requested : hw;
}

Context::Context(ContextOptions opts) : opts_(opts), threads_(resolve_threads(opts.num_threads)) {
  CHECK(opts_.device.is_cpu(), "Context(opts) builds CPU contexts; use Context::create for ", device_str(opts_.device));
  CHECK(opts_.dtype == DType::F32, "the CPU backend computes in f32, got dtype ", dtype_name(opts_.dtype));
}

Context::Context(ContextOptions opts, std::shared_ptr<cuda::DeviceState> state)
    : opts_(opts), threads_(resolve_threads(opts.num_threads)), cuda_(std::move(state)) {}

bool cuda_built() { return DITRUN_WITH_CUDA != 0; }

Result<Context> Context::create(ContextOptions opts) {
  if (opts.device.is_cpu()) {
    if (opts.dtype != DType::F32)
      return Status::error(std::string("dtype ") + dtype_name(opts.dtype) +
                           " is not available on the CPU, which computes in f32 (the reference); use --dtype f32 or --device cuda");
    return Context(opts);
  }
  if (opts.dtype != DType::F32 && opts.dtype != DType::BF16 && opts.dtype != DType::F16)
    return Status::error(std::string("dtype ") + dtype_name(opts.dtype) + " cannot be a compute dtype; use bf16, f16 or f32");
#if DITRUN_WITH_CUDA
  RT_ASSIGN(std::shared_ptr<cuda::DeviceState> state, cuda::DeviceState::create(opts.device.index, opts.debug_sync));
  return Context(opts, std::move(state));
#else
  return Status::error("this ditrun was built without the CUDA backend (nvcc was not found at configure time); "
                       "rebuild with -DDITRUN_CUDA=ON on a machine with the CUDA toolkit, or use --device cpu");
#endif
}

cuda::DeviceState& Context::cuda() const {
  CHECK(cuda_ != nullptr, "Context::cuda() on a ", device_str(opts_.device), " context");
  return *cuda_;
}

void Context::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& f, int64_t grain) const {
  if (n <= 0) return;
  const int64_t workers = std::min<int64_t>(threads_, std::max<int64_t>(1, n / std::max<int64_t>(1, grain)));
  if (workers <= 1) {
    f(0, n);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(size_t(workers - 1));
  const int64_t chunk = (n + workers - 1) / workers;
  for (int64_t w = 1; w < workers; ++w) {
    const int64_t b = w * chunk, e = std::min(n, b + chunk);
    if (b < e) pool.emplace_back([&f, b, e] { f(b, e); });
  }
  f(0, std::min(n, chunk));
  for (auto& t : pool) t.join();
}

}  // namespace rt
