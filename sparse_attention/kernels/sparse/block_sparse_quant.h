// The quantized variant of the block-sparse attention kernel (block_sparse.h): the same tiles, the same
// layout (lists, perm, partial-tile masks from upload_layout), with the numerics of quant.h (INT8 Q/K with
// per-block scales and K smoothing; INT8 or FP8 e4m3 P·V; f32 softmax and accumulation). Its CPU reference
// is reference/quant_cpu.h. Plain C++ header; the kernels (cuda/block_sparse_quant.cu) exist only in CUDA
// builds.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "sparse_attention/attention.h"
#include "sparse_attention/block_layout.h"
#include "sparse_attention/kernels/sparse/block_sparse.h"
#include "sparse_attention/quant.h"

namespace sattn::kernels {

// "" when block_sparse_attention_quant runs (p, layout, quant), else why not: everything
// block_sparse_refusal asks, and quant Int8, Int8Fp8Pv or Int4 (None is block_sparse_attention). Int8Fp8Pv
// also needs an sm_89+ GPU (the FP8 MMA), checked at the call. Int4 runs the Int8 kernel on 4-bit levels.
std::string block_sparse_quant_refusal(const AttentionParams& p, const BlockLayout& layout, AttnQuant quant);

// Key tiles per softmax step of the quantized kernel `selected` (select_block_sparse_quant_kernel's
// answer) at head dimension `dim`: for Sm90Ws 3 at D = 128 and 2 at D = 64 (where three tiles spilled 120
// bytes in its consumers), 1 for the others. Its CPU reference is quant_attention_cpu with this
// tiles_per_step (P is quantized against the running max of a step).
constexpr int quant_tiles_per_step(SparseKernel selected, int64_t dim) {
  return selected != SparseKernel::Sm90Ws ? 1 : dim == 128 ? 3 : 2;
}

// The headroom of the quantized kernel `selected`'s lazy running max, in log2 units (its CPU reference is
// quant_attention_cpu with this max_headroom_log2): Sm90Ws starts a step's exp2s before the step's max is
// known, against the max of the steps before, and moves that max only when a score exceeds it by more than
// 2 in log2 units, a factor 4 in p (session 19: 4-5% faster dense); the others keep the exact running max.
constexpr int quant_max_headroom(SparseKernel selected) { return selected == SparseKernel::Sm90Ws ? 2 : 0; }

// Whether the quantized kernel `selected`'s row sum adds P as P·V multiplied it (its CPU reference is
// quant_attention_cpu with sum_quantized_p): Sm90Ws sums each step's e4m3 P on the tensor core, with 8 rows
// of ones under Vᵀ (session 21: 3-7% faster than the softmax's FADDs); the others sum the f32 p.
constexpr bool quant_sum_quantized_p(SparseKernel selected) { return selected == SparseKernel::Sm90Ws; }

// Whether the quantized kernel `selected` makes P's e4m3 codes from log2 P (kQuantCodeOffset, quant.h; its
// CPU reference is quant_attention_cpu with p_codes): Sm90Ws takes each code from one saturating FFMA and
// one add, with no exp2 and no conversion (session 24: 9-14% faster; 4.1e-2 from the bf16 kernel against
// 3.7e-2 with exp2 and P rounded to nearest); the others round exp2's P to nearest.
constexpr bool quant_p_codes(SparseKernel selected) { return selected == SparseKernel::Sm90Ws; }

namespace cuda {

// Quantized block-sparse attention, in two steps on the context's stream:
//  1. pre-pass (three small kernels): per (batch, head) the mean of k and max|v| per channel over the
//     sequence; then per 64 layout positions (gathered through layout.perm) q quantized to s8 per 32 rows,
//     k - mean to s8 per 64 rows (with the block's largest row norm, for sm90ws's bound on a step's
//     scores), v to s8 or e4m3 with the channel scales, written in layout order into
//     pool buffers (v transposed, for the P·V MMA), padded with zeros to whole query tiles;
//  2. attention: one CTA of four warps per (batch, head, query tile of 128), QK with mma.sync m16n8k32
//     s8·s8 -> s32, online softmax in f32, P·V with mma.sync m16n8k32 u8·s8 -> s32 or e4m3·e4m3 -> f32
//     per key tile, added to an f32 accumulator; the output scattered back through perm. On Hopper (unless
//     p.sparse_kernel is Sm80) the same steps run on wgmma instead (cuda/block_sparse_quant_sm90.cu): two
//     warpgroups per query tile, the same numbers; for Int8Fp8Pv the warp-specialized kernel
//     (cuda/block_sparse_quant_sm90ws.cu), whose softmax steps span three key tiles at D = 128, two at
//     D = 64 (select_block_sparse_quant_kernel, quant_tiles_per_step).
// q, k, v [B, L, H, D] (any strides), output [B, L, H, D] contiguous in q's dtype, natural order; a row
// that attends no key outputs zeros. CHECKs block_sparse_quant_refusal(p, layout, quant) == "".
// `uploaded`: upload_layout(ctx, layout) made earlier (nullptr: validate and upload now).
rt::Tensor block_sparse_attention_quant(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& layout,
                                        AttnQuant quant, const UploadedLayout* uploaded = nullptr);

// The two steps of block_sparse_attention_quant, apart (benchmarks time them separately): the pre-pass's
// pool buffers (8-bit q, k, transposed v in layout order, padded to whole query tiles; their scales and
// k's block norms),
// and the attention over them. quantize_operands CHECKs the refusal; `uploaded` must come from `layout`.
struct QuantizedOperands {
  rt::Tensor q8, k8, vt8, scales, stats;  // typed f32 (rt::DType has no 8-bit integers); never read as floats
  int64_t v_scale_offset = 0;             // floats into stats where the per-channel V scales start
  AttnQuant quant = AttnQuant::Int8;
  rt::DType dtype = rt::DType::BF16;      // of q, k, v and the output
  int64_t batch = 0, len = 0, heads = 0, dim = 0, padded_len = 0;
  float scale = 0.f;                      // the softmax scale
  // p.sparse_kernel at quantize_operands; select_block_sparse_quant_kernel says which kernel that runs (an
  // explicit one the device cannot run CHECK-fails in quantize_operands, before the pre-pass).
  SparseKernel kernel = SparseKernel::Auto;
};
// The quantized kernel block_sparse_attention_quantized runs for `requested` (QuantizedOperands::kernel) and
// `quant`, or std::nullopt with the reason in *why when an explicit Sm90 / Sm90Ws cannot run on this device:
//  - Sm90Ws: the warp-specialized kernel (cuda/block_sparse_quant_sm90ws.cu, 2-3 key tiles per step), for
//    Int8Fp8Pv when Auto or Sm90Ws asks on Hopper;
//  - Sm90: the wgmma kernel (cuda/block_sparse_quant_sm90.cu), for the other modes there and an explicit Sm90;
//  - Sm80: mma.sync, when asked, or for Auto where the wgmma kernels cannot run (*why says why).
// The one rule behind the dispatch and describe_attention.
std::optional<SparseKernel> select_block_sparse_quant_kernel(const rt::Context& ctx, SparseKernel requested,
                                                             AttnQuant quant, std::string* why);

QuantizedOperands quantize_operands(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& layout,
                                    AttnQuant quant, const UploadedLayout& uploaded);
rt::Tensor block_sparse_attention_quantized(const rt::Context& ctx, const QuantizedOperands& operands,
                                            const BlockLayout& layout, const UploadedLayout& uploaded);

}  // namespace cuda

}  // namespace sattn::kernels
