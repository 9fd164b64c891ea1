// What the quantized block-sparse kernels (block_sparse_quant.cu on mma.sync, block_sparse_quant_sm90.cu on
// wgmma) receive: the pre-pass's 8-bit operands in layout order and the uploaded layout. Both launchers take
// this one struct, filled by one function (block_sparse_attention_quantized), so the two kernels cannot read
// the operands or the layout differently.
#pragma once
#include <cstdint>

namespace sattn::kernels::cuda {

struct QuantArgs {
  const int8_t* q8;      // [BH, padded_len, D], layout order
  const int8_t* k8;      // [BH, padded_len, D], layout order
  const uint8_t* vt8;    // [BH, D, padded_len], layout order, keys permuted inside every 16 (v_key)
  const float* q_scale;  // [BH, padded_len / 32]
  const float* k_scale;  // [BH, padded_len / 64]
  const float* k_norm;   // [BH, padded_len / 64]: the largest ‖k8 row‖₂ of each block (quant_prepass.cuh)
  const float* v_scale;  // [BH, D]
  void* out;             // [B, L, H, D] contiguous, natural order
  int seq_len, padded_len, heads, num_q_tiles, layout_batch, layout_heads;
  const int32_t* perm;       // all perm sets; nullptr = identity
  const int32_t* head_perm;  // perm set per layout head; nullptr = one set
  const int32_t* full_offsets;
  const int32_t* full_index;
  const int32_t* partial_offsets;
  const int32_t* partial_index;
  const uint64_t* partial_masks;
  float scale_log2;    // softmax scale · log2(e)
  float inv_p_scale;   // 1/255 (u8 P) or 1/448 (e4m3 P)
  // CTA i runs entry entry_order[i], heavy entries first, as in block_sparse_args.h; nullptr = entry i.
  const int32_t* entry_order;
};

}  // namespace sattn::kernels::cuda
