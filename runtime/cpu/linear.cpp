// GEMMs go through OpenBLAS (float32 in, float32 accumulate); everything around them is plain loops.
#include <cblas.h>

#include <algorithm>

#include "cpu/cpu_ops.h"

namespace rt::cpu {

void gemm(const Context& ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
          int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, float beta) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, int(m),
              int(n), int(k), 1.0f, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

Tensor linear(const Context& ctx, const Tensor& x_in, const Tensor& weight_in, const Tensor& bias) {
  const Tensor x = x_in.contiguous();
  const Tensor w = weight_in.contiguous();
  // Rows from the leading dims, not numel / k, which is 0 / 0 for k = 0.
  const int64_t k = x.size(-1), n = w.size(0), m = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  Shape out_shape = x.shape();
  out_shape.back() = n;
  Tensor y = Tensor::empty(out_shape);
  float* yp = y.data<float>();
  if (bias.defined()) {
    const Tensor b = bias.contiguous();
    const float* bp = b.data<float>();
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) yp[i * n + j] = bp[j];
  }
  if (m > 0 && n > 0 && k > 0)
    gemm(ctx, false, true, m, n, k, x.data<float>(), k, w.data<float>(), k, yp, n, bias.defined() ? 1.f : 0.f);
  else if (!bias.defined()) std::fill(yp, yp + y.numel(), 0.f);  // an empty sum is zero
  return y;
}

Tensor matmul(const Context& ctx, const Tensor& a_in, const Tensor& b_in) {
  const Tensor a = a_in.contiguous();
  const Tensor b = b_in.contiguous();
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  const int64_t batch = shape_numel(Shape(a.shape().begin(), a.shape().end() - 2));
  Shape out_shape = a.shape();
  out_shape.back() = n;
  // With k = 0 the product is all zeros and no GEMM runs.
  Tensor c = k == 0 ? Tensor::zeros(out_shape) : Tensor::empty(out_shape);
  if (c.numel() == 0 || k == 0) return c;
  for (int64_t i = 0; i < batch; ++i)
    gemm(ctx, false, false, m, n, k, a.data<float>() + i * m * k, k, b.data<float>() + i * k * n, n,
         c.data<float>() + i * m * n, n);
  return c;
}

}  // namespace rt::cpu
