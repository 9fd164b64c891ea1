// TorchGenerator: a bit-exact reimplementation of PyTorch's CPU generator, so that `--seed N` gives the
// same starting latents as diffusers' `torch.Generator("cpu").manual_seed(N)` + `torch.randn(...)`.
//
// What torch does (ATen/core/MT19937RNGEngine.h, CPUGeneratorImpl.cpp, DistributionsHelper.h,
// native/cpu/DistributionTemplates.h, native/cpu/avx_mathfun.h):
//  - manual_seed(s): at::mt19937 seeded with the low 32 bits of s (classic init_genrand), left_ = 1 so
//    the first draw regenerates the state; the cached normal samples are cleared.
//  - randn on a contiguous float32 tensor with numel >= 16: fill every element with a uniform float
//    (random() & 2^24-1) * 2^-24, then Box-Muller in blocks of 16 (pairs j, j+8) using avx_mathfun's
//    Cephes log/sincos with GCC's FMA contraction. If numel % 16 != 0 the last 16 elements are redrawn
//    (16 more uniforms) and recomputed. The x86 AVX2 and AVX512 kernels both take this path; the
//    DEFAULT kernel (ATEN_CPU_CAPABILITY=default, non-x86) uses libm instead and is not reproduced.
//  - numel < 16: per element at::normal_distribution<double>: u1, u2 from 53-bit uniform doubles of
//    random64() = (hi << 32) | lo, r = sqrt(-2 log1p(-u2)), theta = 2 pi u1, returns r cos(theta) and
//    caches r sin(theta) in the generator for the next scalar-path element (even across calls).
#pragma once
#include <array>
#include <cstdint>
#include <optional>

#include "tensor.h"

namespace rt {

class TorchGenerator {
 public:
  // Same as torch.Generator().manual_seed(seed): only the low 32 bits of the seed reach the engine.
  explicit TorchGenerator(uint64_t seed);

  // torch.randn(shape, generator=g, dtype=torch.float32) on CPU: a new contiguous f32 CPU tensor.
  Tensor randn(const Shape& shape);
  // Same values written into `out[0, n)`; randn() is a thin wrapper over this.
  void randn_fill(float* out, int64_t n);

  // One raw engine draw (CPUGeneratorImpl::random()).
  uint32_t next_u32();
  // Two draws, first one in the high half (CPUGeneratorImpl::random64()).
  uint64_t next_u64();

  uint64_t seed() const { return seed_; }

 private:
  static constexpr int kStateN = 624;
  static constexpr int kStateM = 397;

  void regenerate_state();
  float uniform_float();    // at::uniform_real_distribution<float>(0, 1)
  double uniform_double();  // at::uniform_real_distribution<double>(0, 1)
  double normal_double();   // at::normal_distribution<double>(0, 1), with the generator's cache

  uint64_t seed_ = 0;
  std::array<uint32_t, kStateN> state_{};
  int left_ = 1;
  int next_ = 0;
  std::optional<double> next_double_normal_;
};

}  // namespace rt
