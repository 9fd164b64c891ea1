// The model calls of one Flux denoising step replayed as a CUDA graph once the shapes are fixed, so the
// host issues one launch per step instead of every kernel. Used by app::denoise and `ditrun bench`.
//
// The graph holds addresses, so its inputs and outputs live in buffers made before the capture: each
// call copies the latents (cast to the context's dtype, as forward_vec would) and every branch's vec
// into them, launches, and copies the outputs out. Call 1 runs that same body eagerly, which builds and
// times every cuBLASLt/cuDNN plan; call 2 captures it (all branches, e.g. both true-CFG passes, in one
// graph) and launches it; later calls replay. conditioning() reads timesteps on the host and stays
// outside, once per step. A refused or failed capture (cuda/graph.h says when) prints one warning line
// on stderr and every later call runs eagerly: the result is the same either way.
//
// Memory: the graph's temporaries (one step's activations) live in the device's graph memory, mapped
// while the graph exists; the capture first hands the pool's cached free blocks back to the driver, so
// this replaces the eager step's activation memory rather than adding to it. Allocations of the
// branches are ordered one after the other inside the graph, so the driver may reuse one branch's
// memory for the next. On top: the static buffers, [B, N, C_in + k·C_out] and k·[B, C] for k branches.
// The graph is released (and its memory trimmed) when this object is destroyed.
//
// The step_index of the capturing call is baked into the graph, so a graph serves only the steps whose
// attention work equals the captured step's: the key is AttentionPolicy::dense_key (which method each
// layer runs). A step with another key runs eagerly (building its plans), the next step with that key
// captures a new graph in place of the old one: dense warm-up steps, then the sparse steps, each replayed.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "dit/flux/model.h"

namespace dit::flux {

// One model call of a step: its text sequence and its conditioning vector.
struct ForwardBranch {
  rt::Tensor txt;  // [B, T, D_txt]; the same tensor on every call (it is read once, at the first)
  rt::Tensor vec;  // [B, C], from FluxTransformer::conditioning
};

// What CapturedForward does with a step whose attention key is `key`: replay the graph captured for that
// key, capture one (a step with this key already ran eagerly and built its plans: `warmed_key`), or run
// eagerly and remember the key as warmed.
enum class GraphStep { Eager, Capture, Replay };
GraphStep graph_step(const std::string& key, const std::string& warmed_key, const std::string& graph_key, bool graph_ready);

class CapturedForward {
 public:
  // `enabled` false, a CPU context or debug-sync mode: every call runs eagerly. model and pe must
  // outlive this object.
  CapturedForward(const rt::Context& ctx, const FluxTransformer& model, const RopeTables& pe, bool enabled,
                  const AttentionPolicy& attention = {});
  ~CapturedForward();
  CapturedForward(const CapturedForward&) = delete;
  CapturedForward& operator=(const CapturedForward&) = delete;

  // model.forward_vec(ctx, img, pe, b.txt, b.vec, step_index, attention) for every branch b: fresh [B, N, C_out]
  // tensors in the context's dtype. Calls that differ from the first in shapes, txt tensors or the
  // number of branches run eagerly.
  std::vector<rt::Tensor> run(const rt::Context& ctx, const rt::Tensor& img, const std::vector<ForwardBranch>& branches,
                              int step_index);

  // Calls served by the graph (the capturing call included).
  int graph_calls() const;
  // Why graphs were given up, or "" (never tried, or working).
  const std::string& failure() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace dit::flux
