// The Hopper (sm_90a, wgmma) block-sparse attention kernel's host side, for block_sparse.cu's dispatch.
// block_sparse_sm90.cu is compiled as its own target (the only one that sees the CuTe headers).
#pragma once
#include "context.h"
#include "sparse_attention/kernels/sparse/cuda/block_sparse_args.h"

namespace sattn::kernels::cuda {

// Launches the wgmma kernel on ctx's stream: grid (query tiles, heads, batch), bf16 or f16, d 64 or 128.
// The caller has checked block_sparse_refusal and block_sparse_sm90_device_refusal (block_sparse.h).
void launch_block_sparse_sm90(const rt::Context& ctx, const BlockSparseArgs& a, bool bf16, int d, unsigned q_tiles,
                              unsigned heads, unsigned batch);
// The warp-specialized variant (cuda/block_sparse_sm90ws.cu, SparseKernel::Sm90Ws, two key tiles per step):
// the same arguments and checks (block_sparse_sm90_device_refusal), the output within the same tolerance.
void launch_block_sparse_sm90ws(const rt::Context& ctx, const BlockSparseArgs& a, bool bf16, int d, unsigned q_tiles,
                                unsigned heads, unsigned batch);

}  // namespace sattn::kernels::cuda
