#include "cuda/graph.h"

#include <exception>

#include "cuda/common.h"
#include "cuda/device_state.h"

namespace rt::cuda {

Graph::~Graph() { reset(); }

void Graph::reset() {
  if (!state_) return;
  DITRUN_CUDA_CHECK(cudaStreamSynchronize(state_->stream));  // a launched replay may still be running
  if (exec_) DITRUN_CUDA_CHECK(cudaGraphExecDestroy(exec_));
  if (graph_) DITRUN_CUDA_CHECK(cudaGraphDestroy(graph_));
  // The device keeps graph memory cached after the graph is gone until it is trimmed.
  DITRUN_CUDA_CHECK(cudaDeviceGraphMemTrim(state_->device));
  exec_ = nullptr;
  graph_ = nullptr;
  state_.reset();
}

std::string Graph::capture(const Context& ctx, const std::function<void()>& record) {
  reset();
  if (ctx.debug_sync()) return "debug-sync mode synchronizes after every op, which a capture cannot hold";
  DeviceState& st = ctx.cuda();
  if (std::string why = st.begin_capture(); !why.empty()) return why;
  std::string why;
  try {
    record();
  } catch (const std::exception& e) {
    why = e.what();
  } catch (...) {
    why = "an exception that is not a std::exception";
  }
  std::string ended;
  cudaGraph_t graph = st.end_capture(&ended);
  if (why.empty()) why = ended;
  if (!why.empty()) {
    if (graph != nullptr) DITRUN_CUDA_CHECK(cudaGraphDestroy(graph));
    return why;
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
  if (e != cudaSuccess) {
    cudaGetLastError();
    DITRUN_CUDA_CHECK(cudaGraphDestroy(graph));
    return std::string("cudaGraphInstantiate: ") + cudaGetErrorString(e);
  }
  state_ = st.shared_from_this();
  graph_ = graph;
  exec_ = exec;
  return "";
}

std::string Graph::launch(const Context& ctx) const {
  CHECK(exec_ != nullptr && state_.get() == &ctx.cuda(), "Graph::launch: no graph captured on this context");
  const cudaError_t e = cudaGraphLaunch(exec_, state_->stream);
  if (e == cudaSuccess) return "";
  cudaGetLastError();
  return std::string("cudaGraphLaunch: ") + cudaGetErrorString(e);
}

}  // namespace rt::cuda
