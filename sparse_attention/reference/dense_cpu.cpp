// Scores for one (batch, head) are a GEMM over a band of queries; the band bounds the score buffer
// (Lk·band floats) for long sequences. Softmax is plain loops with a double sum.
#include "sparse_attention/reference/dense_cpu.h"

#include <algorithm>
#include <cblas.h>
#include <cmath>
#include <vector>

namespace sattn::reference {

static constexpr int64_t kQueryBand = 512;

void softmax_row_cpu(float* row, int64_t n) {
  float mx = -INFINITY;
  for (int64_t j = 0; j < n; ++j) mx = std::max(mx, row[j]);
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    row[j] = mx == -INFINITY ? 0.f : std::exp(row[j] - mx);
    sum += row[j];
  }
  const float inv = sum > 0 ? float(1.0 / sum) : 0.f;
  for (int64_t j = 0; j < n; ++j) row[j] *= inv;
}

rt::Tensor dense_attention_cpu(const rt::Context& ctx, const AttentionParams& p) {
  const rt::Tensor q = p.q.contiguous(), k = p.k.contiguous(), v = p.v.contiguous();
  const int64_t b = q.size(0), lq = q.size(1), h = q.size(2), d = q.size(3);
  const int64_t lk = k.size(1), dv = v.size(3);
  const float scale = p.scale != 0.f ? p.scale : 1.f / std::sqrt(float(d));
  rt::Tensor bias;
  if (p.bias.defined()) bias = (p.bias.dim() == 3 ? p.bias.unsqueeze(0).expand({b, h, lq, lk}) : p.bias.expand({b, h, lq, lk})).contiguous();
  rt::Tensor out = rt::Tensor::empty({b, lq, h, dv});
  std::vector<float> s(size_t(std::min(kQueryBand, lq) * lk));
  for (int64_t bi = 0; bi < b; ++bi) {
    for (int64_t hi = 0; hi < h; ++hi) {
      const float* qb = q.data<float>() + (bi * lq * h + hi) * d;
      const float* kb = k.data<float>() + (bi * lk * h + hi) * d;
      const float* vb = v.data<float>() + (bi * lk * h + hi) * dv;
      float* ob = out.data<float>() + (bi * lq * h + hi) * dv;
      const float* biasb = bias.defined() ? bias.data<float>() + (bi * h + hi) * lq * lk : nullptr;
      for (int64_t q0 = 0; q0 < lq; q0 += kQueryBand) {
        const int64_t rows = std::min(kQueryBand, lq - q0);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(lk), int(d), scale, qb + q0 * h * d,
                    int(h * d), kb, int(h * d), 0.f, s.data(), int(lk));
        ctx.parallel_for(rows, [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r) {
            float* row = s.data() + r * lk;
            const int64_t qi = q0 + r;
            if (biasb)
              for (int64_t j = 0; j < lk; ++j) row[j] += biasb[qi * lk + j];
            if (p.mask == MaskKind::Causal)
              for (int64_t j = qi + 1; j < lk; ++j) row[j] = -INFINITY;
            softmax_row_cpu(row, lk);
          }
        }, 16);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(rows), int(dv), int(lk), 1.f, s.data(), int(lk), vb,
                    int(h * dv), 0.f, ob + q0 * h * dv, int(h * dv));
      }
    }
  }
  return out;
}

}  // namespace sattn::reference
