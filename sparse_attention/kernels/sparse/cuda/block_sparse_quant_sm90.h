// The Hopper (sm_90a, wgmma) quantized block-sparse kernel's host side, for block_sparse_quant.cu's dispatch.
// block_sparse_quant_sm90.cu is compiled in the sm90 object target (the only one that sees the CuTe headers).
#pragma once
#include "context.h"
#include "sparse_attention/kernels/sparse/cuda/block_sparse_quant_args.h"

namespace sattn::kernels::cuda {

// Launches the wgmma quantized kernel on ctx's stream: grid (query tiles, heads, batch), output bf16 or f16,
// d 64 or 128, fp8: P·V in e4m3 (else u8 P times s8 V). The caller has checked block_sparse_quant_refusal
// and block_sparse_sm90_device_refusal (block_sparse.h).
void launch_block_sparse_quant_sm90(const rt::Context& ctx, const QuantArgs& a, bool bf16, int d, bool fp8,
                                    unsigned q_tiles, unsigned heads, unsigned batch);

// The warp-specialized quantized kernel for e4m3 P·V (block_sparse_quant_sm90ws.cu): the same arguments,
// Int8Fp8Pv only.
void launch_block_sparse_quant_sm90ws(const rt::Context& ctx, const QuantArgs& a, bool bf16, int d, unsigned q_tiles,
                                      unsigned heads, unsigned batch);

}  // namespace sattn::kernels::cuda
