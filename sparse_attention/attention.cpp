#include "sparse_attention/attention.h"

#include "sparse_attention/kernels/dense/select.h"
#include "sparse_attention/methods/structured.h"
#include "sparse_attention/reference/dense_cpu.h"

#if DITRUN_WITH_CUDA
#include "sparse_attention/kernels/dense/cuda/cudnn_sdpa.h"
#include "sparse_attention/reference/cuda/dense_cuda.h"
#endif

namespace sattn {

static bool is_gpu_float(rt::DType t) { return t == rt::DType::F32 || t == rt::DType::BF16 || t == rt::DType::F16; }

static void validate(const rt::Context& ctx, const AttentionParams& p) {
  CHECK(p.q.defined() && p.k.defined() && p.v.defined(), "attention: q, k and v are required");
  CHECK(p.q.dim() == 4 && p.k.dim() == 4 && p.v.dim() == 4, "attention: q ", p.q.str(), ", k ", p.k.str(), ", v ",
        p.v.str(), " must all be [B, L, H, D]");
  CHECK(p.q.size(0) == p.k.size(0) && p.k.size(0) == p.v.size(0), "attention: batch differs: q ", p.q.str(), " k ",
        p.k.str(), " v ", p.v.str());
  CHECK(p.q.size(2) == p.k.size(2) && p.k.size(2) == p.v.size(2), "attention: heads differ: q ", p.q.str(), " k ",
        p.k.str(), " v ", p.v.str());
  CHECK(p.q.size(3) == p.k.size(3), "attention: q ", p.q.str(), " and k ", p.k.str(), " head dims differ");
  CHECK(p.k.size(1) == p.v.size(1), "attention: k ", p.k.str(), " and v ", p.v.str(), " lengths differ");
  if (p.bias.defined()) {
    const rt::Shape tail{p.q.size(2), p.q.size(1), p.k.size(1)};
    const bool ok = (p.bias.dim() == 3 && p.bias.shape() == tail) ||
                    (p.bias.dim() == 4 && p.bias.size(0) == p.q.size(0) && rt::Shape(p.bias.shape().begin() + 1, p.bias.shape().end()) == tail);
    CHECK(ok, "attention: bias ", p.bias.str(), " must be [H, Lq, Lk] = ", rt::shape_str(tail), " or [B, H, Lq, Lk]");
  }
  for (const rt::Tensor* t : {&p.q, &p.k, &p.v, &p.bias}) {
    if (!t->defined()) continue;
    CHECK(t->device() == ctx.device(), "attention: ", t->str(), " is on ", rt::device_str(t->device()),
          " but the context runs on ", rt::device_str(ctx.device()));
    if (t->device().is_cpu())
      CHECK(t->dtype() == rt::DType::F32, "attention: ", t->str(), ": CPU tensors must be f32");
    else
      CHECK(is_gpu_float(t->dtype()), "attention: ", t->str(), ": GPU tensors must be f32, bf16 or f16");
  }
  CHECK(p.k.dtype() == p.q.dtype() && p.v.dtype() == p.q.dtype(), "attention: q ", p.q.str(), ", k ", p.k.str(),
        " and v ", p.v.str(), " must share one dtype");
}

rt::Tensor attention(const rt::Context& ctx, const AttentionParams& p) {
  validate(ctx, p);
  if (p.observer != nullptr) p.observer->observe(ctx, p);
  if (is_structured(p)) return structured_attention(ctx, p);
  std::string why;
  const std::optional<DenseKernel> kernel = select_dense_kernel(ctx, p, &why);
  CHECK(kernel.has_value(), "attention: the requested kernel '", dense_kernel_name(p.kernel), "' cannot run q ",
        p.q.str(), " k ", p.k.str(), " v ", p.v.str(), ": ", why);
  if (p.q.device().is_cpu()) return reference::dense_attention_cpu(ctx, p);
#if DITRUN_WITH_CUDA
  if (*kernel == DenseKernel::Cudnn) return kernels::cuda::cudnn_sdpa(ctx, p);
  return reference::dense_attention_cuda(ctx, p);
#else
  CHECK(false, "attention: CUDA tensors in a build without the CUDA backend");
#endif
}

std::string describe_dense_kernel(const rt::Context& ctx, const AttentionParams& p) {
  validate(ctx, p);
  std::string why;
  const std::optional<DenseKernel> kernel = select_dense_kernel(ctx, p, &why);
  if (!kernel) return "cannot run: " + why;
  if (*kernel == DenseKernel::Cudnn) return "cudnn_sdpa";
  if (p.q.device().is_cpu()) return "cpu_reference";
  return why.empty() ? "cuda_reference" : "cuda_reference (cuDNN passed over: " + why + ")";
}

std::string describe_attention(const rt::Context& ctx, const AttentionParams& p) {
  if (!is_structured(p)) return describe_dense_kernel(ctx, p);
  validate(ctx, p);
  return describe_structured(ctx, p);
}

}  // namespace sattn
