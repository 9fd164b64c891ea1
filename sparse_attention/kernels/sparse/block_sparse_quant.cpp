#include "sparse_attention/kernels/sparse/block_sparse_quant.h"

namespace sattn::kernels {

std::string block_sparse_quant_refusal(const AttentionParams& p, const BlockLayout& layout, AttnQuant quant) {
  if (quant == AttnQuant::None) return "quant none is the unquantized block-sparse kernel (block_sparse_attention)";
  const std::string why = block_sparse_refusal(p, layout);
  return why.empty() ? why : "quantized " + why;
}

}  // namespace sattn::kernels
