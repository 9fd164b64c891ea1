// The op API. Every op validates its inputs (CHECK with the offending shapes), computes the output
// shape, and runs on the backend of its inputs' device, which must be the context's. Shapes are PyTorch
// order; inputs may be non-contiguous views; outputs are new contiguous tensors. On the CPU (the
// reference backend) float tensors are f32; on a GPU they are f32, bf16 or f16, computed in f32, and the
// output takes the first float input's dtype.
#pragma once
#include <vector>

#include "context.h"
#include "tensor.h"

namespace rt {

// ---- memory and transfers ---------------------------------------------------------------------
// Uninitialized contiguous tensor on the context's device (GPU: from its memory pool).
Tensor empty(const Context& ctx, const Shape& shape, DType dtype);
Tensor zeros(const Context& ctx, const Shape& shape, DType dtype);
// A contiguous copy of t (any device) on `device` in `dtype` (conversion where the dtypes differ).
Tensor to_device(const Context& ctx, const Tensor& t, Device device, DType dtype);
// t on the context's device; float tensors in the context's dtype, others (i64) unchanged.
Tensor to_ctx(const Context& ctx, const Tensor& t);
// t on the CPU; float tensors as f32 (what the reference and the writers take), i64 unchanged.
Tensor to_host(const Context& ctx, const Tensor& t);
// t itself when contiguous, else a contiguous copy on its device.
Tensor contiguous(const Context& ctx, const Tensor& t);
// A contiguous copy in another float dtype (t itself if contiguous and already that dtype).
Tensor cast(const Context& ctx, const Tensor& t, DType dtype);
// A view when the strides allow one, else a contiguous copy viewed as `shape`.
Tensor reshape(const Context& ctx, const Tensor& t, const Shape& shape);
// dst[i] = src[i] over equal shapes, converting between float dtypes: the one op that writes into an
// existing tensor (the fixed input and output buffers of a captured CUDA graph). Both on the context's
// device, any strides; dst must not overlap itself or src.
void copy_(const Context& ctx, const Tensor& dst, const Tensor& src);
// Waits for all queued device work of the context (no-op on the CPU).
void synchronize(const Context& ctx);
// Device memory of the context's pool (zeros on the CPU); the peak is since the last reset_peak_memory.
MemoryStats memory_stats(const Context& ctx);
void reset_peak_memory(const Context& ctx);
// Fills t (contiguous, float) with uniform values in [lo, hi) from a counter-based hash of (seed, index):
// the same numbers on every device (runtime/random_hash.h).
void fill_uniform(const Context& ctx, const Tensor& t, uint64_t seed, float lo, float hi);

// ---- linear algebra -------------------------------------------------------------------------
// x [..., K], weight [N, K], bias [N] or undefined -> [..., N]. y = x·weightᵀ + bias.
Tensor linear(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias = {});
// a [..., M, K], b [..., K, N] (same leading dims) -> [..., M, N].
Tensor matmul(const Context& ctx, const Tensor& a, const Tensor& b);
// gelu_tanh(linear(x, weight, bias)) in one pass where the backend fuses it (cuBLASLt's GELU epilogue).
Tensor linear_gelu_tanh(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias = {});
// acc [..., N] + x·weightᵀ + bias: a product split along K (Flux's single-stream linear2 over [attn | mlp]
// without concatenating them); on the GPU acc is cuBLASLt's C operand.
Tensor linear_accumulate(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& acc);

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

// ---- fused (the Flux blocks' hot paths; each equals the chain of ops it names) -------------------
// x [B, L, C], shift/scale [B, C] (any strides, e.g. chunks of one [B, k·C] modulation output) ->
// [B, L, C]: layer_norm(x, no affine, eps)·(1 + scale) + shift, shift and scale broadcast over L.
Tensor layer_norm_modulate(const Context& ctx, const Tensor& x, const Tensor& shift, const Tensor& scale, float eps);
// x, y [B, L, C], gate [B, C] -> x + gate·y, gate broadcast over L (the gated residual add).
Tensor gated_residual(const Context& ctx, const Tensor& x, const Tensor& gate, const Tensor& y);
// x [B, L, H, D] (any strides, e.g. q of a fused qkv projection), weight [D] or undefined, cos/sin
// [L, D/2] -> contiguous [B, L, H, D]: rope(rms_norm(x, weight, eps), cos, sin).
Tensor qk_norm_rope(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& cos, const Tensor& sin,
                    float eps);

}  // namespace rt
