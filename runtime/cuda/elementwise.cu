// Placeholder until the kernels land; see cuda_ops.h for the contract.
#include "cuda/common.cuh"
#include "cuda/cuda_ops.h"
namespace rt::cuda {
Tensor binary(const Context&, cpu::BinaryOp, const Tensor&, const Tensor&) { DITRUN_CHECK(false, "cuda::binary: not yet"); }
Tensor unary(const Context&, cpu::UnaryOp, const Tensor&) { DITRUN_CHECK(false, "cuda::unary: not yet"); }
Tensor affine(const Context&, const Tensor&, float, float) { DITRUN_CHECK(false, "cuda::affine: not yet"); }
}  // namespace rt::cuda
