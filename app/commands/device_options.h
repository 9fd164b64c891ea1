// --device / --dtype / --debug-sync / --no-cuda-graph, shared by every command that runs a model, and the
// Context they make.
#pragma once
#include <string>

#include <CLI/CLI.hpp>

#include "context.h"

namespace app {

struct DeviceOptions {
  std::string device = "cpu";  // cpu | cuda | cuda:N
  std::string dtype;           // f32 | bf16 | f16; empty: f32 on the CPU, bf16 on a GPU
  bool debug_sync = false;
  // Replay the denoising step as a CUDA graph from its second step on (DenoiseOptions::cuda_graph); the
  // context does not need it, the commands pass it on. Ignored on the CPU and with --debug-sync.
  bool cuda_graph = true;
  int threads = 0;
};

void add_device_options(CLI::App& cmd, DeviceOptions& o);

// The context for the options, or an error naming the bad value / the missing GPU and what to do.
rt::Result<rt::Context> make_context(const DeviceOptions& o, rt::LogLevel level);

}  // namespace app
