#include "sparse_attention/kernels/sparse/block_sparse.h"

#include <sstream>

namespace sattn {

const char* sparse_kernel_name(SparseKernel k) {
  switch (k) {
    case SparseKernel::Auto: return "auto";
    case SparseKernel::Sm80: return "sm80";
    case SparseKernel::Sm90: return "sm90";
    case SparseKernel::Sm90Ws: return "sm90ws";
  }
  return "?";
}

bool parse_sparse_kernel(std::string_view name, SparseKernel* out) {
  for (SparseKernel k : {SparseKernel::Auto, SparseKernel::Sm80, SparseKernel::Sm90, SparseKernel::Sm90Ws})
    if (name == sparse_kernel_name(k)) {
      *out = k;
      return true;
    }
  return false;
}

}  // namespace sattn

namespace sattn::kernels {

std::string block_sparse_refusal(const AttentionParams& p, const BlockLayout& layout) {
  std::ostringstream why;
  if (!p.q.defined() || !p.q.device().is_cuda()) return "the block-sparse kernel runs on CUDA tensors";
  if (p.q.dtype() != rt::DType::BF16 && p.q.dtype() != rt::DType::F16)
    return std::string("the block-sparse kernel takes bf16 or f16, got ") + rt::dtype_name(p.q.dtype());
  const int64_t d = p.q.size(3), dv = p.v.size(3), lq = p.q.size(1), lk = p.k.size(1);
  if (!block_sparse_head_dim_supported(d) || dv != d) {
    why << "the block-sparse kernel takes head dims 64 or 128 with Dv == D, got D=" << d << " Dv=" << dv;
    return why.str();
  }
  if (lq != lk || lq != layout.seq_len) {
    why << "the block-sparse kernel runs self-attention over the layout's sequence: Lq=" << lq << " Lk=" << lk
        << " layout.seq_len=" << layout.seq_len;
    return why.str();
  }
  if (p.bias.defined() || p.mask != MaskKind::None)
    return "the block-sparse kernel takes no bias or causal mask (the layout and its rule are the mask)";
  if (layout.q_tile != kBlockSparseQTile || layout.kv_tile != kBlockSparseKvTile) {
    why << "the layout was planned with tiles " << layout.q_tile << "x" << layout.kv_tile
        << "; the block-sparse kernel runs q_tile=" << kBlockSparseQTile << " kv_tile=" << kBlockSparseKvTile
        << " (plan with kernels::kBlockSparseQTile / kBlockSparseKvTile)";
    return why.str();
  }
  const int64_t b = p.q.size(0), h = p.q.size(2);
  if ((layout.batch != 1 && layout.batch != b) || (layout.heads != 1 && layout.heads != h)) {
    why << "the layout covers batch " << layout.batch << " x heads " << layout.heads << "; the call has batch " << b
        << " x heads " << h << " (a layout's batch and heads are 1, broadcast, or the call's)";
    return why.str();
  }
  return "";
}

namespace cuda {

size_t upload_words(const BlockLayout& l) {
  const size_t slots = l.partial_index.size();
  return l.perm.size() + l.full_offsets.size() + l.full_index.size() + l.partial_offsets.size() + 2 * slots +
         (l.head_perm.empty() ? 0 : slots + l.head_perm.size());
}

}  // namespace cuda

}  // namespace sattn::kernels
