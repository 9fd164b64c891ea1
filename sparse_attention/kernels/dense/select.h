// Dense kernel selection: one function answers both "can it run" and "which one runs" (the rule of
// ggml's get_best_fattn_kernel), so a check and the run that follows never disagree.
#pragma once
#include <optional>
#include <string>

#include "sparse_attention/attention.h"

namespace sattn {

// The kernel that runs p on ctx: Cudnn or Reference, never Auto (Reference means the reference of the
// tensors' device). std::nullopt when p.kernel names a kernel that cannot run p; *why then says why. In
// auto mode on a GPU, *why says why cuDNN was passed over ("" when it was chosen). Expects shapes that
// attention() accepts; on a GPU it may build (once, cached in the context) the cuDNN graph to ask cuDNN.
std::optional<DenseKernel> select_dense_kernel(const rt::Context& ctx, const AttentionParams& p, std::string* why);

}  // namespace sattn
