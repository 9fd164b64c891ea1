// cuDNN's FP8 (e4m3) fused attention forward, dense: the yardstick for 8-bit attention on this GPU.
// `bench-attention --cudnn-fp8` times it against cuDNN's bf16 SDPA on the same problem, which bounds what
// 8-bit operands gain there (the INT8/FP8 target, docs/performance.md). Not an attention executor:
// ditrun's quantized attention is quant= (block_sparse_quant.h), with SageAttention's numerics. CUDA builds
// only; plain C++ header.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "context.h"
#include "tensor.h"

namespace sattn::kernels::cuda {

// Per-tensor scales: the real q is descale_q · q8 (k, v alike), and o8 holds scale_o · o. Inside, cuDNN
// quantizes the softmax's P to e4m3 with scale 448.
struct Fp8SdpaScales {
  float descale_q = 1.f, descale_k = 1.f, descale_v = 1.f, scale_o = 1.f;
};

// One cuDNN graph for q8, k8, v8 [B, L, H, D] F8E4M3 (contiguous), softmax scale `scale`; every plan cuDNN
// offers is built and the fastest kept on the first run, as cudnn_sdpa does for large problems.
class CudnnSdpaFp8 {
 public:
  CudnnSdpaFp8(const rt::Context& ctx, int64_t batch, int64_t len, int64_t heads, int64_t dim, float scale,
               const Fp8SdpaScales& scales);
  ~CudnnSdpaFp8();
  CudnnSdpaFp8(const CudnnSdpaFp8&) = delete;
  CudnnSdpaFp8& operator=(const CudnnSdpaFp8&) = delete;

  // "" when cuDNN built the graph, else why not (cuDNN's message).
  const std::string& refusal() const;
  // o8 [B, L, H, D] F8E4M3 on ctx's stream; CHECKs refusal() == "" and the operands' shapes and dtypes.
  rt::Tensor run(const rt::Context& ctx, const rt::Tensor& q8, const rt::Tensor& k8, const rt::Tensor& v8);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sattn::kernels::cuda
