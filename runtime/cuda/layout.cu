// Placeholder until the kernels land; see cuda_ops.h for the contract.
#include "cuda/common.cuh"
#include "cuda/cuda_ops.h"
namespace rt::cuda {
Tensor embedding(const Context&, const Tensor&, const Tensor&) { DITRUN_CHECK(false, "not yet"); }
Tensor rope(const Context&, const Tensor&, const Tensor&, const Tensor&) { DITRUN_CHECK(false, "not yet"); }
}  // namespace rt::cuda
