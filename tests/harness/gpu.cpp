#include "harness/gpu.h"

#include <cstdlib>
#include <map>
#include <memory>

namespace test {

const rt::Context* gpu_context(rt::DType dtype) {
  static std::map<rt::DType, std::unique_ptr<rt::Context>> contexts;
  static bool reported = false;
  auto it = contexts.find(dtype);
  if (it != contexts.end()) return it->second.get();
  rt::ContextOptions o;
  o.device = rt::Device::cuda(0);
  o.dtype = dtype;
  o.debug_sync = std::getenv("DITRUN_CUDA_DEBUG") != nullptr;
  auto made = rt::Context::create(o);
  if (!made.is_ok()) {
    if (!reported) std::printf("no GPU for this test: %s\n", made.status().message().c_str());
    reported = true;
    contexts[dtype] = nullptr;
    return nullptr;
  }
  auto ctx = std::make_unique<rt::Context>(std::move(made).value());
  return (contexts[dtype] = std::move(ctx)).get();
}

const rt::Context& cpu_context() {
  static const rt::Context c(rt::ContextOptions{rt::Device::cpu(), 2});
  return c;
}

}  // namespace test
