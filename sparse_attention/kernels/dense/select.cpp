#include "sparse_attention/kernels/dense/select.h"

#if DITRUN_WITH_CUDA
#include "sparse_attention/kernels/dense/cuda/cudnn_sdpa.h"
#endif

namespace sattn {

const char* dense_kernel_name(DenseKernel k) {
  switch (k) {
    case DenseKernel::Auto: return "auto";
    case DenseKernel::Cudnn: return "cudnn";
    case DenseKernel::Reference: return "reference";
  }
  return "?";
}

bool parse_dense_kernel(std::string_view name, DenseKernel* out) {
  for (DenseKernel k : {DenseKernel::Auto, DenseKernel::Cudnn, DenseKernel::Reference}) {
    if (name == dense_kernel_name(k)) {
      *out = k;
      return true;
    }
  }
  return false;
}

std::optional<DenseKernel> select_dense_kernel(const rt::Context& ctx, const AttentionParams& p, std::string* why) {
  std::string reason;
  std::optional<DenseKernel> chosen = DenseKernel::Reference;
  if (p.q.device().is_cpu()) {
    if (p.kernel == DenseKernel::Cudnn) {
      reason = "cuDNN's fused attention runs on CUDA tensors; these are on the CPU";
      chosen = std::nullopt;
    }
  } else if (p.kernel != DenseKernel::Reference) {
#if DITRUN_WITH_CUDA
    reason = kernels::cuda::cudnn_sdpa_refusal(ctx, p);
#else
    reason = "this build has no CUDA backend";
#endif
    if (reason.empty()) chosen = DenseKernel::Cudnn;
    else if (p.kernel == DenseKernel::Cudnn) chosen = std::nullopt;
  }
  if (why) *why = reason;
  return chosen;
}

}  // namespace sattn
