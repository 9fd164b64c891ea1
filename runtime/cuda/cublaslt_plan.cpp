#include "cuda/cublaslt_plan.h"

#include <atomic>
#include <climits>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/common.h"
#include "cuda/device_state.h"
#include "cuda/timing.h"

namespace rt::cuda {

// Heuristic candidates to time per problem, and the size below which the first one is taken untimed.
inline constexpr int kCandidates = 8;
inline constexpr double kTuneMinFlops = double(1 << 30);

namespace {

// The descriptors of one problem and its algorithm: the heuristic's candidates, timed once on first use.
struct LtPlan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  std::vector<cublasLtMatmulAlgo_t> candidates;  // emptied once timed
  std::atomic<bool> found{false};  // false: cuBLASLt has no algorithm; remembered, not asked again
  // The bias pointer is an attribute of `op`, so setting it and the call that reads it hold this lock.
  std::mutex mu;

  LtPlan() = default;
  LtPlan(const LtPlan&) = delete;
  LtPlan& operator=(const LtPlan&) = delete;
  ~LtPlan() {
    if (d) cublasLtMatrixLayoutDestroy(d);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

}  // namespace

static cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::BF16: return CUDA_R_16BF;
    case DType::F16: return CUDA_R_16F;
    default: CHECK(false, "gemm: cuBLASLt takes f32, bf16 or f16, got ", dtype_name(t));
  }
}

// cuBLASLt's GELU epilogue is the tanh approximation 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))), which is what
// gelu_tanh / F.gelu(approximate="tanh") compute. cublasLt.h only says "GELU"; the tanh form is what
// PyTorch's _addmm_activation(use_gelu=True) relies on (its non-cuBLASLt path applies gelu(approximate=
// "tanh") for the same result) and the only GELU that XLA rewrites into this epilogue.
static cublasLtEpilogue_t lt_epilogue(GemmEpilogue e) {
  switch (e) {
    case GemmEpilogue::None: return CUBLASLT_EPILOGUE_DEFAULT;
    case GemmEpilogue::Bias: return CUBLASLT_EPILOGUE_BIAS;
    case GemmEpilogue::Gelu: return CUBLASLT_EPILOGUE_GELU;
    case GemmEpilogue::GeluBias: return CUBLASLT_EPILOGUE_GELU_BIAS;
  }
  CHECK(false, "gemm: unknown epilogue ", int(e));
}

static bool has_bias(GemmEpilogue e) { return e == GemmEpilogue::Bias || e == GemmEpilogue::GeluBias; }

// The largest power of two up to 256 that divides the address: the alignment the chosen kernel may assume.
static uint32_t alignment(const void* p) {
  const uintptr_t v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && v % a != 0) a /= 2;
  return a;
}

static cublasLtMatrixLayout_t make_layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int64_t batch,
                                          int64_t batch_stride) {
  cublasLtMatrixLayout_t l = nullptr;
  DITRUN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, uint64_t(rows), uint64_t(cols), ld));
  if (batch > 1) {
    const int32_t count = int32_t(batch);
    DITRUN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    DITRUN_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &batch_stride,
                                                         sizeof(batch_stride)));
  }
  return l;
}

static std::string operand_key(const GemmOperand& o) {
  return std::to_string(o.trans) + "," + std::to_string(o.rows) + "x" + std::to_string(o.cols) + ",ld" +
         std::to_string(o.ld) + ",s" + std::to_string(o.batch_stride) + ",al" + std::to_string(alignment(o.data));
}

static std::shared_ptr<LtPlan> build_plan(DeviceState& st, DType dtype, int64_t m, int64_t n, int64_t k, int64_t batch,
                                          const GemmOperand& a, const GemmOperand& b, void* d, GemmEpilogue epilogue,
                                          const void* bias, const void* c) {
  auto plan = std::make_shared<LtPlan>();
  const cudaDataType_t type = cuda_type(dtype);
  // CUBLAS_COMPUTE_32F without the _FAST_TF32 variant keeps f32 products in full f32.
  DITRUN_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const int32_t ta = a.trans ? CUBLAS_OP_T : CUBLAS_OP_N, tb = b.trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  DITRUN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  DITRUN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  const uint32_t epi = lt_epilogue(epilogue);
  DITRUN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  // The bias is a vector of D's type (cublasLt.h, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: bf16 for bf16 output),
  // the default. The heuristic reads the pointer's alignment, so the real one is set before the query.
  if (has_bias(epilogue))
    DITRUN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  plan->a = make_layout(type, a.rows, a.cols, a.ld, batch, a.batch_stride);
  plan->b = make_layout(type, b.rows, b.cols, b.ld, batch, b.batch_stride);
  plan->d = make_layout(type, m, n, m, batch, m * n);

  cublasLtMatmulPreference_t pref = nullptr;
  DITRUN_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = st.cublaslt_workspace_bytes;
  DITRUN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  const uint32_t al_a = alignment(a.data), al_b = alignment(b.data), al_d = alignment(d);
  const uint32_t al_c = c ? alignment(c) : al_d;
  DITRUN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof(al_a)));
  DITRUN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof(al_b)));
  DITRUN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c, sizeof(al_c)));
  DITRUN_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_d, sizeof(al_d)));
  cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
  int found = 0;
  const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(st.cublaslt, plan->op, plan->a, plan->b, plan->d, plan->d,
                                                          pref, kCandidates, results, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  // NOT_SUPPORTED is the usual answer when no kernel fits; older cuBLASLt versions also said INVALID_VALUE
  // for some degenerate shapes. Either way the caller retries differently and reports if nothing works.
  for (int i = 0; s == CUBLAS_STATUS_SUCCESS && i < found; ++i)
    if (results[i].state == CUBLAS_STATUS_SUCCESS) plan->candidates.push_back(results[i].algo);
  plan->found = !plan->candidates.empty();
  if (plan->found) plan->algo = plan->candidates[0];
  // Small problems keep the heuristic's first choice: timing them costs more than it can save.
  if (double(m) * double(n) * double(k) * double(batch) < kTuneMinFlops) plan->candidates.clear();
  return plan;
}

// Times each candidate on the real operands (events on the stream, median of three after one warm-up) and
// keeps the fastest. The heuristic's first pick was ~10% slower than PyTorch's GEMMs on Flux's shapes.
static void tune(DeviceState& st, LtPlan& plan, const void* a, const void* b, void* d, const void* c) {
  const float alpha = 1.f, beta = c ? 1.f : 0.f;
  const int64_t best = fastest_launch(st.stream, int64_t(plan.candidates.size()), [&](int64_t i) {
    return cublasLtMatmul(st.cublaslt, plan.op, &alpha, a, plan.a, b, plan.b, &beta, c ? c : d, plan.d, d, plan.d,
                          &plan.candidates[size_t(i)], st.cublaslt_workspace, st.cublaslt_workspace_bytes,
                          st.stream) == CUBLAS_STATUS_SUCCESS;
  });
  if (best >= 0) plan.algo = plan.candidates[size_t(best)];
  plan.candidates.clear();
}

bool gemm(const Context& ctx, DType dtype, int64_t m, int64_t n, int64_t k, int64_t batch, const GemmOperand& a,
          const GemmOperand& b, void* d, GemmEpilogue epilogue, const void* bias, const void* c) {
  CHECK(m > 0 && n > 0 && k > 0 && batch > 0, "gemm: empty problem m=", m, " n=", n, " k=", k, " batch=", batch);
  CHECK(m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX && batch <= INT32_MAX, "gemm: m=", m, " n=", n, " k=", k,
        " batch=", batch, " exceed what cuBLASLt takes (int32)");
  CHECK(!has_bias(epilogue) || bias != nullptr, "gemm: bias epilogue without a bias");
  DeviceState& st = ctx.cuda();
  std::string key = "cublaslt|" + std::string(dtype_name(dtype)) + "|" + std::to_string(m) + "," + std::to_string(n) +
                    "," + std::to_string(k) + ",b" + std::to_string(batch) + "|A" + operand_key(a) + "|B" +
                    operand_key(b) + "|D" + std::to_string(alignment(d)) + "|e" + std::to_string(int(epilogue));
  if (has_bias(epilogue)) key += ",bias" + std::to_string(alignment(bias));
  if (c) key += ",C" + std::to_string(alignment(c));  // beta = 1: the heuristic sees C's alignment too

  std::shared_ptr<LtPlan> plan;
  {
    std::lock_guard<std::mutex> lock(st.plans_mu);
    auto it = st.plans.find(key);
    if (it == st.plans.end()) {
      plan = build_plan(st, dtype, m, n, k, batch, a, b, d, epilogue, bias, c);
      st.plans.emplace(key, plan);
    } else {
      plan = std::static_pointer_cast<LtPlan>(it->second);
    }
  }
  if (!plan->found) return false;
  const float alpha = 1.f, beta = c ? 1.f : 0.f;
  std::lock_guard<std::mutex> lock(plan->mu);
  if (has_bias(epilogue))
    DITRUN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  if (c == d) plan->candidates.clear();  // in-place accumulation: a timing run would change C
  if (!plan->candidates.empty() && !st.capturing) tune(st, *plan, a.data, b.data, d, c);
  const cublasStatus_t s = cublasLtMatmul(st.cublaslt, plan->op, &alpha, a.data, plan->a, b.data, plan->b, &beta,
                                          c ? c : d, plan->d, d, plan->d, &plan->algo, st.cublaslt_workspace,
                                          st.cublaslt_workspace_bytes, st.stream);
  // The heuristic's own algorithm refused at launch: remember it and let the caller take another route.
  if (s == CUBLAS_STATUS_NOT_SUPPORTED) {
    plan->found = false;
    return false;
  }
  DITRUN_CUBLAS_CHECK(s);
  return true;
}

}  // namespace rt::cuda
