// linear, linear_gelu_tanh and batched matmul through cuBLASLt (cublaslt_plan.h). cuBLAS is column-major,
// and a row-major matrix read column-major is its transpose, so each product is computed transposed:
// Yᵀ[N, M] = W[N, K] · Xᵀ[K, M] written column-major is Y[M, N] row-major. Strided views whose last two
// dims have one unit stride map to a leading dimension and a transpose flag (a kᵀ view costs no copy);
// other layouts are made contiguous first.
#include <cstdint>

#include "cuda/cublaslt_plan.h"
#include "cuda/cuda_ops.h"
#include "ops.h"

namespace rt::cuda {

// The dims [0, end) of t as one batch dim (count, stride), size-1 dims skipped; false when they do not
// collapse to a single stride, or when a repeated batch would read the same memory (stride 0).
static bool collapse_leading(const Tensor& t, int64_t end, int64_t& count, int64_t& stride) {
  count = 1;
  stride = 0;
  for (int64_t d = end - 1; d >= 0; --d) {
    const int64_t size = t.size(d), s = t.strides()[size_t(d)];
    if (size == 1) continue;
    if (count == 1) stride = s;
    else if (s != stride * count) return false;
    count *= size;
  }
  return count == 1 || stride > 0;
}

// The operand whose op() is L (or Lᵀ when `want_transposed`), where L[rows, cols] holds element (r, c) at
// data + r·row_stride + c·col_stride. False when neither stride of the matrix is a unit one.
static bool as_operand(const void* data, int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride,
                       bool want_transposed, GemmOperand& o) {
  o.data = data;
  // Row-major L is column-major Lᵀ with ld = row stride.
  if ((cols == 1 || col_stride == 1) && (rows == 1 || row_stride >= cols)) {
    o.rows = cols;
    o.cols = rows;
    o.ld = rows == 1 ? cols : row_stride;
    o.trans = !want_transposed;
    return true;
  }
  // Column-major L (a transposed view of a row-major tensor) is stored as L itself with ld = col stride.
  if ((rows == 1 || row_stride == 1) && (cols == 1 || col_stride >= rows)) {
    o.rows = rows;
    o.cols = cols;
    o.ld = cols == 1 ? rows : col_stride;
    o.trans = want_transposed;
    return true;
  }
  return false;
}

// The last two dims of t as a batched operand (all leading dims are the batch), or false.
static bool batched_operand(const Tensor& t, bool want_transposed, int64_t& batch, GemmOperand& o) {
  const int64_t r = t.dim();
  if (!collapse_leading(t, r - 2, batch, o.batch_stride)) return false;
  return as_operand(t.raw_data(), t.size(r - 2), t.size(r - 1), t.strides()[size_t(r - 2)], t.strides()[size_t(r - 1)],
                    want_transposed, o);
}

// x [..., K] as the operand op() = Xᵀ[K, M], with every leading dim folded into M, or false.
static bool rows_operand(const Tensor& x, GemmOperand& o) {
  int64_t m = 1, row_stride = 0;
  if (!collapse_leading(x, x.dim() - 1, m, row_stride)) return false;
  return as_operand(x.raw_data(), m, x.size(-1), row_stride, x.strides().back(), true, o);
}

static Tensor in_dtype(const Context& ctx, const Tensor& t, DType dtype) {
  return t.dtype() == dtype ? t : rt::cast(ctx, t, dtype);
}

// A contiguous copy in fresh pool memory, aligned as cuBLASLt's kernels want.
static Tensor fresh(const Context& ctx, const Tensor& t) {
  Tensor out = cuda::empty(ctx, t.shape(), t.dtype());
  cuda::copy(ctx, out, t);
  return out;
}

// acc (optional, the output's shape): added to the product through cuBLASLt's C operand (beta = 1).
static Tensor linear_with(const Context& ctx, const Tensor& x_in, const Tensor& weight, const Tensor& bias_in, bool gelu,
                          const char* op, const Tensor& acc_in = {}) {
  const DType dt = x_in.dtype();
  const int64_t k = x_in.size(-1), n = weight.size(0);
  Shape out_shape = x_in.shape();
  out_shape.back() = n;
  Tensor y = cuda::empty(ctx, out_shape, dt);
  if (y.numel() == 0) return y;
  // The bias epilogue reads a packed vector of the output's dtype.
  Tensor bias = bias_in.defined() ? rt::cast(ctx, bias_in, dt) : Tensor();
  const Tensor acc = acc_in.defined() ? rt::cast(ctx, acc_in, dt) : Tensor();  // contiguous, y's dtype
  if (k == 0) {
    if (acc.defined()) return rt::add(ctx, acc, bias.defined() ? bias : rt::zeros(ctx, {n}, dt));  // an empty sum: y = bias or 0, then the activation
    if (bias.defined()) cuda::copy(ctx, y, bias.expand(out_shape));
    else cuda::fill(ctx, y, 0.f);
    return gelu ? rt::gelu_tanh(ctx, y) : y;
  }
  Tensor x = x_in, w = in_dtype(ctx, weight, dt);
  const GemmEpilogue fused = gelu ? (bias.defined() ? GemmEpilogue::GeluBias : GemmEpilogue::Gelu)
                                  : (bias.defined() ? GemmEpilogue::Bias : GemmEpilogue::None);
  // Attempt 0 reads the views as they are, 1 fresh aligned copies, 2 also leaves the epilogue to rt ops.
  GemmEpilogue epi = fused;
  for (int attempt = 0;; ++attempt) {
    GemmOperand a, b;
    if (!as_operand(w.raw_data(), n, k, w.strides()[0], w.strides()[1], false, a)) {
      w = rt::contiguous(ctx, w);
      CHECK(as_operand(w.raw_data(), n, k, k, 1, false, a), op, ": weight ", w.str());
    }
    if (!rows_operand(x, b)) {
      x = rt::contiguous(ctx, x);
      CHECK(rows_operand(x, b), op, ": x ", x.str());
    }
    if (gemm(ctx, dt, n, y.numel() / n, k, 1, a, b, y.raw_data(), epi, bias.defined() ? bias.raw_data() : nullptr,
             acc.defined() ? acc.raw_data() : nullptr))
      break;
    CHECK(attempt == 0 || (attempt == 1 && epi != GemmEpilogue::None), op, ": cuBLASLt has no algorithm for x ", x.str(),
          " weight ", w.str(), ", not even on aligned copies without an epilogue");
    if (attempt == 0) {
      x = fresh(ctx, x);
      w = fresh(ctx, w);
      if (bias.defined()) bias = fresh(ctx, bias);
    } else {
      epi = GemmEpilogue::None;
    }
  }
  check_launch(ctx, op);
  if (epi == fused) return y;
  if (bias.defined()) y = rt::add(ctx, y, bias);
  return gelu ? rt::gelu_tanh(ctx, y) : y;
}

Tensor linear(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  return linear_with(ctx, x, weight, bias, false, "linear");
}

Tensor linear_gelu_tanh(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  return linear_with(ctx, x, weight, bias, true, "linear_gelu_tanh");
}

Tensor linear_accumulate(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& acc) {
  return linear_with(ctx, x, weight, bias, false, "linear_accumulate", acc);
}

// C[..., M, N] = A[..., M, K] · B[..., K, N] as Cᵀ = Bᵀ · Aᵀ: cuBLAS's A is our b, its B our a.
Tensor matmul(const Context& ctx, const Tensor& a_in, const Tensor& b_in) {
  const DType dt = a_in.dtype();
  const int64_t m = a_in.size(-2), k = a_in.size(-1), n = b_in.size(-1);
  Shape out_shape = a_in.shape();
  out_shape.back() = n;
  Tensor c = cuda::empty(ctx, out_shape, dt);
  if (c.numel() == 0) return c;
  if (k == 0) {
    cuda::fill(ctx, c, 0.f);
    return c;
  }
  Tensor a = a_in, b = in_dtype(ctx, b_in, dt);
  for (int attempt = 0;; ++attempt) {
    GemmOperand lt_a, lt_b;
    int64_t batch_a = 1, batch_b = 1;
    if (!batched_operand(b, true, batch_b, lt_a)) {
      b = rt::contiguous(ctx, b);
      CHECK(batched_operand(b, true, batch_b, lt_a), "matmul: b ", b.str());
    }
    if (!batched_operand(a, true, batch_a, lt_b)) {
      a = rt::contiguous(ctx, a);
      CHECK(batched_operand(a, true, batch_a, lt_b), "matmul: a ", a.str());
    }
    CHECK(batch_a == batch_b, "matmul: batch ", batch_a, " vs ", batch_b, " for ", a.str(), " and ", b.str());
    if (gemm(ctx, dt, n, m, k, batch_a, lt_a, lt_b, c.raw_data(), GemmEpilogue::None, nullptr)) break;
    CHECK(attempt == 0, "matmul: cuBLASLt has no algorithm for ", a.str(), " · ", b.str(), " even on aligned copies");
    a = fresh(ctx, a);
    b = fresh(ctx, b);
  }
  check_launch(ctx, "matmul");
  return c;
}

}  // namespace rt::cuda
