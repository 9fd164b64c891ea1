#include "app/commands/device_options.h"

#include <cstdlib>

namespace app {

void add_device_options(CLI::App& cmd, DeviceOptions& o) {
  cmd.add_option("--device", o.device, "cpu (float32 reference) or cuda / cuda:N (NVIDIA GPU)")->capture_default_str();
  cmd.add_option("--dtype", o.dtype, "compute dtype: f32, bf16 or f16 (default: f32 on cpu, bf16 on cuda)");
  cmd.add_flag("--debug-sync", o.debug_sync,
               "GPU: synchronize after every op and name the op that failed (slow; also DITRUN_CUDA_DEBUG=1)");
  cmd.add_flag_callback("--no-cuda-graph", [&o] { o.cuda_graph = false; },
                        "GPU: issue every kernel of every denoising step instead of replaying the step as a CUDA graph "
                        "from its second step on (graphs are also off with --debug-sync)");
  cmd.add_option("--threads", o.threads, "CPU threads (0 = all)");
}

rt::Result<rt::Context> make_context(const DeviceOptions& o, rt::LogLevel level) {
  rt::ContextOptions c;
  c.num_threads = o.threads;
  c.log_level = level;
  c.debug_sync = o.debug_sync || std::getenv("DITRUN_CUDA_DEBUG") != nullptr;
  if (o.device == "cpu") {
    c.device = rt::Device::cpu();
  } else if (o.device == "cuda" || o.device.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (o.device.size() > 5) {
      char* end = nullptr;
      const long v = std::strtol(o.device.c_str() + 5, &end, 10);
      if (*end != '\0' || v < 0)
        return rt::Status::error("--device " + o.device + ": expected cuda:N with N a device number, e.g. cuda:0");
      index = int(v);
    }
    c.device = rt::Device::cuda(index);
  } else {
    return rt::Status::error("--device " + o.device + " is not a device; use cpu, cuda or cuda:N");
  }
  const std::string dt = o.dtype.empty() ? (c.device.is_cpu() ? "f32" : "bf16") : o.dtype;
  if (dt == "f32") c.dtype = rt::DType::F32;
  else if (dt == "bf16") c.dtype = rt::DType::BF16;
  else if (dt == "f16") c.dtype = rt::DType::F16;
  else return rt::Status::error("--dtype " + dt + " is not a compute dtype; use f32, bf16 or f16");
  return rt::Context::create(c);
}

}  // namespace app
