// CPU reference kernels: plain loops with float32 data and wider accumulation where it matters.
// Callers (runtime/ops/*.cpp) have validated shapes and made inputs contiguous unless a kernel says
// it takes strided views.
#pragma once
#include <vector>

#include "context.h"
#include "tensor.h"

namespace rt::cpu {

void gemm(const Context& ctx, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
          int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, float beta = 0.f);

Tensor linear(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias);
Tensor matmul(const Context& ctx, const Tensor& a, const Tensor& b);

enum class BinaryOp { Add, Sub, Mul };
// a, b: any strides, already broadcast to `out_shape` through zero strides.
Tensor binary(const Context& ctx, BinaryOp op, const Tensor& a, const Tensor& b);
enum class UnaryOp { Silu, GeluTanh, GeluErf, QuickGelu };
Tensor unary(const Context& ctx, UnaryOp op, const Tensor& x);
Tensor affine(const Context& ctx, const Tensor& x, float s, float t);

Tensor layer_norm(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, float eps);
Tensor rms_norm(const Context& ctx, const Tensor& x, const Tensor& weight, float eps);
Tensor group_norm(const Context& ctx, const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias,
                  float eps);
Tensor softmax(const Context& ctx, const Tensor& x);

Tensor conv2d(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
              int64_t padding);
Tensor upsample_nearest2d(const Context& ctx, const Tensor& x, int64_t factor);

// dst, src f32 of one shape, any strides.
void copy_(const Context& ctx, const Tensor& dst, const Tensor& src);
Tensor concat(const Context& ctx, const std::vector<Tensor>& xs, int64_t dim);
Tensor embedding(const Context& ctx, const Tensor& ids, const Tensor& table);
Tensor rope(const Context& ctx, const Tensor& x, const Tensor& cos, const Tensor& sin);

Tensor layer_norm_modulate(const Context& ctx, const Tensor& x, const Tensor& shift, const Tensor& scale, float eps);
Tensor gated_residual(const Context& ctx, const Tensor& x, const Tensor& gate, const Tensor& y);
Tensor qk_norm_rope(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& cos, const Tensor& sin,
                    float eps);

}  // namespace rt::cpu
