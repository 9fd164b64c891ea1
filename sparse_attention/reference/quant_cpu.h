// CPU reference of quantized block-sparse attention (quant.h): the numerics written out in plain loops, in
// the order the CUDA kernel (kernels/sparse/cuda/block_sparse_quant.cu) computes them, so the two differ
// only in f32 rounding (summation order, exp vs exp2). Small problems only (tests).
#pragma once
#include "sparse_attention/attention.h"
#include "sparse_attention/block_layout.h"
#include "sparse_attention/quant.h"

namespace sattn::reference {

struct QuantReferenceOptions {
  bool smooth_k = true;    // subtract the per-(batch, head, channel) mean of k before quantizing
  bool quantize_p = true;  // false: P·V with P in f32 (V still quantized); tests of the other stages
  // Key tiles per softmax step: the running max is updated once per this many consecutive tiles of the
  // visiting order, and their P quantized against it. P's rounding depends on that max (e4m3 and u8 are not
  // scale-invariant), so each kernel's reference uses its own step (quant_tiles_per_step,
  // block_sparse_quant.h). Across different steps the outputs agree to the quantization's noise, not to f32
  // rounding.
  int tiles_per_step = 1;
  // The lazy running max (quant_max_headroom, block_sparse_quant.h), in log2 units: 0 keeps the exact
  // running max (flash attention's rule). H > 0: a step moves the max only when its own max exceeds it by
  // more than H (or nothing was attended before), and P is quantized as p_scale·2^-H·exp(s - max), so
  // scores up to H above the max still fit the P format. Without P's quantization the result is the same.
  int max_headroom_log2 = 0;
  // The row sum adds P as P·V takes it (e4m3 or u8 levels, over the P scale) instead of the unquantized P
  // (quant_sum_quantized_p, block_sparse_quant.h): a kernel that sums each step's P on the tensor core (ones
  // under Vᵀ) normalizes by what it multiplied.
  bool sum_quantized_p = false;
  // P's e4m3 code from log2 P (quant_p_codes, block_sparse_quant.h; e4m3_from_log2) instead of P rounded
  // to nearest (round_e4m3); a finite running max then moves by whole code steps (1/8 in log2 units), to
  // the step's max or just past it. FP8 P·V only; u8 P ignores it.
  bool p_codes = false;
};

// Attention over the tiles `layout` lists (as block_layout_attention_cpu) with quantized operands:
// per (batch, head) k is smoothed, q quantized in blocks of kQuantQBlock layout positions, k in blocks of
// kQuantKBlock, v per channel; then per query row the key tiles are visited in the kernel's order (the
// full list, then the partial list) with an online softmax in f32: per step of options.tiles_per_step
// tiles S from the integer dot products, the running max updated from the step, P = exp(S - max)
// quantized (255·P to u8, or 448·P to e4m3, or its code from log2 P with options.p_codes), each tile's P·V
// summed exactly and added to the rescaled accumulator; at the end the V scale and 1/(P scale · sum of the
// unquantized P) are applied.
// quant = None: no quantization anywhere (the result equals block_layout_attention_cpu up to f32
// rounding). A row that attends no key outputs zeros.
// p: CPU f32, self-attention over layout.seq_len tokens, no bias or causal mask.
rt::Tensor quant_attention_cpu(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& layout,
                               AttnQuant quant, const QuantReferenceOptions& options = {});

// The quality of a mode: relative L2 distance of quant_attention_cpu to the unquantized layout reference
// (block_layout_attention_cpu) on the same inputs.
double quant_error(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& layout, AttnQuant quant,
                   const QuantReferenceOptions& options = {});

// Round-to-nearest-even to an FP8 e4m3 (FN) value, saturating at ±448 (cvt.rn.satfinite.e4m3x2.f32).
float round_e4m3(float x);

// The e4m3 value of the code clamp(round(8·y + 56 + kQuantCodeOffset), 0, 126) (quant.h): P = 2^y by
// Mitchell's approximation, 0 for y <= -6.89 (and -inf), 448 from y = log2 448 up.
float e4m3_from_log2(float y);

}  // namespace sattn::reference
