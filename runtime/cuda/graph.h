// A CUDA graph of the work one callable enqueues on a context's stream: recorded once, replayed with one
// launch, so the host no longer issues every kernel. The recorded work keeps its addresses: inputs and
// outputs must stay in tensors allocated before the capture, and the callable must release everything it
// allocates (DeviceState's capture bookkeeping refuses the capture otherwise). Plain C++ header, so host
// code needs no CUDA headers; the implementation exists only in CUDA builds.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "context.h"

struct CUgraph_st;
struct CUgraphExec_st;

namespace rt::cuda {

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  ~Graph();

  // Records what `record` enqueues on ctx's stream (nothing runs) and instantiates it. Returns "" when
  // the graph is ready, else why the capture was abandoned: debug-sync mode, a CUDA error only a capture
  // produces, a host round trip (synchronize, upload, download), another exception from `record`, a
  // refusal from DeviceState (a plan first needed while capturing, a tensor that outlives the capture or
  // one older than it released in it), or a failed instantiation. Nothing of an abandoned capture ran or
  // stays queued: the caller runs the work eagerly instead.
  std::string capture(const Context& ctx, const std::function<void()>& record);
  bool ready() const { return exec_ != nullptr; }
  // Enqueues the recorded work on the stream it was captured from; "" or the launch error.
  std::string launch(const Context& ctx) const;
  // Waits for the stream, destroys the graph and returns its memory to the driver.
  void reset();

 private:
  std::shared_ptr<DeviceState> state_;
  CUgraph_st* graph_ = nullptr;
  CUgraphExec_st* exec_ = nullptr;
};

}  // namespace rt::cuda
