// Two cuBLASLt GEMMs per (batch, query band), batched over heads through strides, and a row kernel
// between them. Everything that is not a GEMM is one plain kernel, so this file is the readable
// definition of GPU attention; speed comes from cuDNN (kernels/dense/cuda/).
#include "sparse_attention/reference/cuda/dense_cuda.h"

#include <algorithm>
#include <cmath>

#include "cuda/common.cuh"
#include "cuda/cuda_ops.h"
#include "cuda/device_state.h"

namespace sattn::reference {

namespace {

using rt::cuda::from_float;
using rt::cuda::to_float;

constexpr int kThreads = 256;

struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct SumOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};

// Reduces v over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
template <typename Op>
__device__ float block_reduce(float v, Op op, float identity) {
  __shared__ float part[32];
  __shared__ float result;
  for (int o = 16; o > 0; o /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, warps = int(blockDim.x) / 32;
  __syncthreads();  // a previous call's readers of `result` are done
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? part[lane] : identity;
    for (int o = 16; o > 0; o /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (lane == 0) result = v;
  }
  __syncthreads();
  return result;
}

// One block per (query row of the band, head). s: f32 scores [H, band, ld] (already scaled); p: the
// probabilities in the GEMM dtype, same layout (may alias s when P is f32: each element is read and
// written by the same thread, after both reductions). bias points at (batch, first query of the band).
template <typename P, typename B>
__global__ void softmax_rows_kernel(const float* s, P* p, int64_t ld, int64_t band, int64_t lk, int64_t q0,
                                    const B* bias, int64_t bias_h, int64_t bias_q, int64_t bias_k, bool causal) {
  const int64_t r = blockIdx.x, h = blockIdx.y;
  const float* srow = s + (h * band + r) * ld;
  P* prow = p + (h * band + r) * ld;
  const B* brow = bias != nullptr ? bias + h * bias_h + r * bias_q : nullptr;
  const int64_t valid = causal ? std::min(lk, q0 + r + 1) : lk;  // keys past `valid` are masked
  auto score = [&](int64_t j) { return brow != nullptr ? srow[j] + to_float(brow[j * bias_k]) : srow[j]; };

  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < valid; j += blockDim.x) mx = fmaxf(mx, score(j));
  mx = block_reduce(mx, MaxOp{}, -INFINITY);
  if (mx == -INFINITY) {  // every key masked: zeros, as the CPU reference defines it
    for (int64_t j = threadIdx.x; j < lk; j += blockDim.x) prow[j] = from_float<P>(0.f);
    return;
  }
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < valid; j += blockDim.x) sum += expf(score(j) - mx);
  sum = block_reduce(sum, SumOp{}, 0.f);
  const float inv = 1.f / sum;
  for (int64_t j = threadIdx.x; j < lk; j += blockDim.x)
    prow[j] = from_float<P>(j < valid ? expf(score(j) - mx) * inv : 0.f);
}

struct SoftmaxArgs {
  const float* s;
  void* p;
  int64_t ld, band, lk, q0;
  const void* bias;  // at (batch, first query of the band), or null
  int64_t bias_h, bias_q, bias_k;
  bool causal;
};

template <typename P, typename B>
void launch_softmax(const rt::Context& ctx, int64_t rows, int64_t heads, const SoftmaxArgs& a) {
  const dim3 grid{unsigned(rows), unsigned(heads)};
  softmax_rows_kernel<P, B><<<grid, kThreads, 0, ctx.cuda().stream>>>(a.s, static_cast<P*>(a.p), a.ld, a.band, a.lk, a.q0,
                                                                      static_cast<const B*>(a.bias), a.bias_h, a.bias_q,
                                                                      a.bias_k, a.causal);
}

// Column-major C[m, n] = alpha · op(A)[m, k] · B[k, n], `batch` times at the given element strides.
struct Gemm {
  cudaDataType_t ab_type, c_type;
  bool trans_a;
  int64_t m, n, k;
  const void* a;
  int64_t lda, stride_a;
  const void* b;
  int64_t ldb, stride_b;
  void* c;
  int64_t ldc, stride_c;
  int batch;
  float alpha;
};

uint32_t pointer_alignment(const void* ptr) {
  const auto addr = reinterpret_cast<uintptr_t>(ptr);
  uint32_t a = 256;
  while (a > 1 && addr % a != 0) a /= 2;
  return a;
}

cublasLtMatrixLayout_t make_layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int batch, int64_t stride) {
  cublasLtMatrixLayout_t l = nullptr;
  DITRUN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, uint64_t(rows), uint64_t(cols), ld));
  DITRUN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch));
  DITRUN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride));
  return l;
}

// f32 compute type (CUBLAS_COMPUTE_32F, never TF32): the f32 path must match the CPU at 1e-4.
void lt_gemm(const rt::Context& ctx, const Gemm& g) {
  rt::cuda::DeviceState& st = ctx.cuda();
  cublasLtMatmulDesc_t desc = nullptr;
  DITRUN_CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = CUBLAS_OP_N;
  DITRUN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  DITRUN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  cublasLtMatrixLayout_t la = make_layout(g.ab_type, g.trans_a ? g.k : g.m, g.trans_a ? g.m : g.k, g.lda, g.batch, g.stride_a);
  cublasLtMatrixLayout_t lb = make_layout(g.ab_type, g.k, g.n, g.ldb, g.batch, g.stride_b);
  cublasLtMatrixLayout_t lc = make_layout(g.c_type, g.m, g.n, g.ldc, g.batch, g.stride_c);

  cublasLtMatmulPreference_t pref = nullptr;
  DITRUN_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = st.cublaslt_workspace_bytes;
  DITRUN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  const uint32_t align_a = pointer_alignment(g.a), align_b = pointer_alignment(g.b), align_c = pointer_alignment(g.c);
  DITRUN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a, sizeof align_a));
  DITRUN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b, sizeof align_b));
  DITRUN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c, sizeof align_c));
  DITRUN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_c, sizeof align_c));

  cublasLtMatmulHeuristicResult_t heur{};
  int found = 0;
  DITRUN_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(st.cublaslt, desc, la, lb, lc, lc, pref, 1, &heur, &found));
  CHECK(found > 0, "attention reference: cuBLASLt has no algorithm for m=", g.m, " n=", g.n, " k=", g.k, " lda=", g.lda,
        " ldb=", g.ldb, " ldc=", g.ldc, " batch=", g.batch);
  const float beta = 0.f;
  DITRUN_CUBLAS_CHECK(cublasLtMatmul(st.cublaslt, desc, &g.alpha, g.a, la, g.b, lb, &beta, g.c, lc, g.c, lc, &heur.algo,
                                     st.cublaslt_workspace, st.cublaslt_workspace_bytes, st.stream));
  cublasLtMatmulPreferenceDestroy(pref);
  cublasLtMatrixLayoutDestroy(lc);
  cublasLtMatrixLayoutDestroy(lb);
  cublasLtMatrixLayoutDestroy(la);
  cublasLtMatmulDescDestroy(desc);
}

cudaDataType_t cuda_type(rt::DType t) {
  switch (t) {
    case rt::DType::F32: return CUDA_R_32F;
    case rt::DType::BF16: return CUDA_R_16BF;
    case rt::DType::F16: return CUDA_R_16F;
    default: break;
  }
  DITRUN_CHECK(false, "attention reference: no GEMM type for ", rt::dtype_name(t));
  return CUDA_R_32F;
}

// [B, L, H, D] views the GEMMs read as matrices per (batch, head): D dense, rows at least D apart.
rt::Tensor gemm_operand(const rt::Context& ctx, const rt::Tensor& t) {
  if (t.strides()[3] == 1 && t.strides()[1] >= t.size(3)) return t;
  rt::Tensor c = rt::cuda::empty(ctx, t.shape(), t.dtype());
  rt::cuda::copy(ctx, c, t);
  return c;
}

const char* at(const rt::Tensor& t, int64_t elems) {
  return static_cast<const char*>(t.raw_data()) + elems * int64_t(rt::dtype_size(t.dtype()));
}

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

}  // namespace

rt::Tensor dense_attention_cuda(const rt::Context& ctx, const AttentionParams& p, int64_t score_budget_bytes) {
  const int64_t b = p.q.size(0), lq = p.q.size(1), h = p.q.size(2), d = p.q.size(3);
  const int64_t lk = p.k.size(1), dv = p.v.size(3);
  const rt::DType dt = p.q.dtype();
  rt::Tensor out = rt::cuda::empty(ctx, {b, lq, h, dv}, dt);
  if (out.numel() == 0) return out;
  if (lk == 0 || d == 0) {  // no keys: every row is fully masked; zeros as on the CPU
    rt::cuda::fill(ctx, out, 0.f);
    return out;
  }
  const rt::Tensor q = gemm_operand(ctx, p.q), k = gemm_operand(ctx, p.k), v = gemm_operand(ctx, p.v);
  const float scale = p.scale != 0.f ? p.scale : 1.f / std::sqrt(float(d));
  // Score rows padded to 8 elements keep every row of S (f32) and P (16-bit) 16-byte aligned.
  const int64_t ld = round_up(lk, 8);
  const int64_t band = std::clamp<int64_t>(score_budget_bytes / (h * ld * 4), 1, lq);
  const rt::Tensor s = rt::cuda::empty(ctx, {h, band, ld}, rt::DType::F32);
  const rt::Tensor probs = dt == rt::DType::F32 ? s : rt::cuda::empty(ctx, {h, band, ld}, dt);
  rt::Tensor bias;
  if (p.bias.defined()) bias = p.bias.dim() == 3 ? p.bias.unsqueeze(0).expand({b, h, lq, lk}) : p.bias;
  const cudaDataType_t ct = cuda_type(dt);
  const int64_t e = int64_t(rt::dtype_size(dt));

  for (int64_t bi = 0; bi < b; ++bi) {
    for (int64_t q0 = 0; q0 < lq; q0 += band) {
      const int64_t rows = std::min(band, lq - q0);
      // Sᵀ (column-major [Lk, rows]) = K·Qᵀ: K's rows are keys, Q's rows the band's queries.
      lt_gemm(ctx, Gemm{ct, CUDA_R_32F, true, lk, rows, d, at(k, bi * k.strides()[0]), k.strides()[1], k.strides()[2],
                        at(q, bi * q.strides()[0] + q0 * q.strides()[1]), q.strides()[1], q.strides()[2], s.raw_data(),
                        ld, band * ld, int(h), scale});
      SoftmaxArgs args{static_cast<const float*>(s.raw_data()), probs.raw_data(), ld, band, lk, q0, nullptr, 0, 0, 0,
                       p.mask == MaskKind::Causal};
      if (bias.defined()) {
        args.bias = at(bias, bi * bias.strides()[0] + q0 * bias.strides()[2]);
        args.bias_h = bias.strides()[1], args.bias_q = bias.strides()[2], args.bias_k = bias.strides()[3];
      }
      DITRUN_DISPATCH_FLOAT(dt, P, [&] {
        if (!bias.defined()) return launch_softmax<P, P>(ctx, rows, h, args);
        DITRUN_DISPATCH_FLOAT(bias.dtype(), B, [&] { launch_softmax<P, B>(ctx, rows, h, args); });
      });
      rt::cuda::check_launch(ctx, "attention.reference_softmax");
      // Oᵀ (column-major [Dv, rows], rows H·Dv apart in the [B, Lq, H, Dv] output) = Vᵀ·Pᵀ.
      lt_gemm(ctx, Gemm{ct, ct, false, dv, rows, lk, at(v, bi * v.strides()[0]), v.strides()[1], v.strides()[2],
                        probs.raw_data(), ld, band * ld, static_cast<char*>(out.raw_data()) + (bi * lq + q0) * h * dv * e,
                        h * dv, dv, int(h), 1.f});
    }
  }
  return out;
}

}  // namespace sattn::reference
