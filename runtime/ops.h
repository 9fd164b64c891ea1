// The op API. Every op validates its inputs (CHECK with the offending shapes), computes the output
// shape, and runs on the backend of its inputs' device. Shapes are PyTorch order. Float ops take and
// return float32 tensors on the CPU (the reference backend); inputs may be non-contiguous views.
#pragma once
#include <vector>

#include "context.h"
#include "tensor.h"

namespace rt {

// ---- linear algebra -------------------------------------------------------------------------
// x [..., K], weight [N, K], bias [N] or undefined -> [..., N]. y = x·weightᵀ + bias.
Tensor linear(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias = {});
// a [..., M, K], b [..., K, N] (same leading dims) -> [..., M, N].
Tensor matmul(const Context& ctx, const Tensor& a, const Tensor& b);

// ---- elementwise (numpy broadcasting between a and b) --------------------------------------
Tensor add(const Context& ctx, const Tensor& a, const Tensor& b);
Tensor sub(const Context& ctx, const Tensor& a, const Tensor& b);
Tensor mul(const Context& ctx, const Tensor& a, const Tensor& b);
// a·s + t, elementwise.
Tensor affine(const Context& ctx, const Tensor& x, float s, float t);
Tensor silu(const Context& ctx, const Tensor& x);
Tensor gelu_tanh(const Context& ctx, const Tensor& x);   // 0.5x(1+tanh(√(2/π)(x+0.044715x³)))
Tensor gelu_erf(const Context& ctx, const Tensor& x);    // 0.5x(1+erf(x/√2))
Tensor quick_gelu(const Context& ctx, const Tensor& x);  // x·σ(1.702x)

// ---- normalization (statistics in double over the normalized elements) ---------------------
// Over the last dim. weight/bias [C] or undefined (no affine).
Tensor layer_norm(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, float eps);
// x / sqrt(mean(x²) + eps) · weight, over the last dim. weight [C] or undefined.
Tensor rms_norm(const Context& ctx, const Tensor& x, const Tensor& weight, float eps);
// x [N, C, *spatial]; C divisible by groups; weight/bias [C] or undefined.
Tensor group_norm(const Context& ctx, const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias,
                  float eps);
// Softmax over the last dim.
Tensor softmax(const Context& ctx, const Tensor& x);

// ---- convolution and resampling -------------------------------------------------------------
// x [N, C, H, W], weight [O, C, kh, kw], bias [O] or undefined; symmetric zero padding.
Tensor conv2d(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
              int64_t padding);
// Nearest-neighbour upsampling of the last two dims by an integer factor: x [N, C, H, W] -> [N, C, fH, fW].
Tensor upsample_nearest2d(const Context& ctx, const Tensor& x, int64_t factor);

// ---- layout -------------------------------------------------------------------------------------
// Concatenation along dim; all other dims equal.
Tensor concat(const Context& ctx, const std::vector<Tensor>& xs, int64_t dim);
// ids int64 [...] with values in [0, V), table [V, D] -> [..., D].
Tensor embedding(const Context& ctx, const Tensor& ids, const Tensor& table);

// ---- positional ---------------------------------------------------------------------------------
// Rotary embedding with interleaved pairs (2p, 2p+1), x [B, L, H, D], cos/sin [L, D/2]:
// out[2p] = x[2p]·cos − x[2p+1]·sin, out[2p+1] = x[2p]·sin + x[2p+1]·cos.
Tensor rope(const Context& ctx, const Tensor& x, const Tensor& cos, const Tensor& sin);

}  // namespace rt
