// The CUDA backend's op entry points (namespace rt::cuda), one per op name in ops.h. runtime/ops/*.cpp
// validates and then dispatches here for device tensors, so these assume valid shapes and a device
// context. Float tensors may be f32, bf16 or f16; compute is f32 inside every kernel; outputs are
// contiguous and take the dtype of the first float input unless an op says otherwise.
// Declared in a plain C++ header so that host code needs no CUDA headers.
#pragma once
#include <vector>

#include "context.h"
#include "cpu/cpu_ops.h"  // BinaryOp, UnaryOp
#include "tensor.h"

namespace rt::cuda {

// Uninitialized contiguous device tensor from the context's pool. Throws rt::OutOfMemory when the pool
// cannot grow, with the sizes involved and what to try.
Tensor empty(const Context& ctx, const Shape& shape, DType dtype);
// After every launch: surfaces launch errors at once and, in debug-sync mode, kernel faults, naming `op`.
void check_launch(const Context& ctx, const char* op);
// synchronize, upload and download are host round trips: during a CUDA graph capture (cuda/graph.h) they
// throw CaptureError instead, which abandons the capture.
void synchronize(const Context& ctx);
MemoryStats memory_stats(const Context& ctx);
void reset_peak_memory(const Context& ctx);

// dst[i] = convert(src[i]) over equal shapes; both may be strided views (dst must not overlap itself).
void copy(const Context& ctx, const Tensor& dst, const Tensor& src);
// Contiguous host <-> device copies of the same dtype and numel.
void upload(const Context& ctx, const Tensor& dst_device, const Tensor& src_host);
void download(const Context& ctx, const Tensor& dst_host, const Tensor& src_device);
// Fill with a constant.
void fill(const Context& ctx, const Tensor& dst, float value);
// Uniform [lo, hi) from random_hash.h's counter-based hash (contiguous dst).
void fill_uniform(const Context& ctx, const Tensor& dst, uint64_t seed, float lo, float hi);

Tensor linear(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias);
Tensor matmul(const Context& ctx, const Tensor& a, const Tensor& b);
Tensor linear_accumulate(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& acc);
Tensor linear_gelu_tanh(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias);

Tensor binary(const Context& ctx, cpu::BinaryOp op, const Tensor& a, const Tensor& b);  // broadcast views
Tensor unary(const Context& ctx, cpu::UnaryOp op, const Tensor& x);
Tensor affine(const Context& ctx, const Tensor& x, float s, float t);

Tensor layer_norm(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, float eps);
Tensor rms_norm(const Context& ctx, const Tensor& x, const Tensor& weight, float eps);
Tensor group_norm(const Context& ctx, const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias,
                  float eps);
Tensor softmax(const Context& ctx, const Tensor& x);

Tensor conv2d(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
              int64_t padding);

Tensor embedding(const Context& ctx, const Tensor& ids, const Tensor& table);
Tensor rope(const Context& ctx, const Tensor& x, const Tensor& cos, const Tensor& sin);

Tensor layer_norm_modulate(const Context& ctx, const Tensor& x, const Tensor& shift, const Tensor& scale, float eps);
Tensor gated_residual(const Context& ctx, const Tensor& x, const Tensor& gate, const Tensor& y);
Tensor qk_norm_rope(const Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& cos, const Tensor& sin,
                    float eps);

}  // namespace rt::cuda
