#include "rng.h"

#include <cmath>
#include <cstring>

// Bit-exactness depends on which multiply-adds are fused. Every fusion torch's build performs is
// written below as an explicit std::fma; everything else must stay a separately rounded mul and add,
// so the compiler must not contract on its own (it would with -march=native and -ffp-contract=fast).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace rt {
namespace {

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// One lane of avx_mathfun's log256_ps (Cephes logf). torch compiles it with -mfma and GCC's default
// -ffp-contract=fast, so each `y = y * x + p` is one fma, and `y*z + e*q1` fuses the y*z product
// (the first operand of the add); the other fusions there are exact either way.
float cephes_log(float x_in) {
  const bool invalid = x_in <= 0.0f;
  float x = std::fmax(x_in, bits_to_float(0x00800000u));  // cut off denormals
  const int32_t exponent = int32_t(float_to_bits(x) >> 23) - 0x7f;
  x = bits_to_float((float_to_bits(x) & ~0x7f800000u) | float_to_bits(0.5f));  // mantissa in [0.5, 1)
  float e = float(exponent) + 1.0f;

  const bool below = x < float(0.707106781186547524);
  const float tmp = below ? x : 0.0f;
  x = x - 1.0f;
  e = e - (below ? 1.0f : 0.0f);
  x = x + tmp;

  const float z = x * x;
  float y = float(7.0376836292E-2);
  y = std::fma(y, x, float(-1.1514610310E-1));
  y = std::fma(y, x, float(1.1676998740E-1));
  y = std::fma(y, x, float(-1.2420140846E-1));
  y = std::fma(y, x, float(+1.4249322787E-1));
  y = std::fma(y, x, float(-1.6668057665E-1));
  y = std::fma(y, x, float(+2.0000714765E-1));
  y = std::fma(y, x, float(-2.4999993993E-1));
  y = std::fma(y, x, float(+3.3333331174E-1));
  y = y * x;
  y = std::fma(y, z, e * float(-2.12194440e-4));
  y = std::fma(-z, 0.5f, y);
  x = x + y;
  x = std::fma(e, 0.693359375f, x);
  return invalid ? bits_to_float(0xffffffffu) : x;  // the AVX code ORs the all-ones mask in: a NaN
}

// One lane of avx_mathfun's sincos256_ps (Cephes sinf/cosf with extended-precision range reduction).
void cephes_sincos(float x_in, float* sin_out, float* cos_out) {
  uint32_t sign_sin = float_to_bits(x_in) & 0x80000000u;
  float x = bits_to_float(float_to_bits(x_in) & 0x7fffffffu);

  // cvttps truncates toward zero; j = (j + 1) & ~1 picks the octant pair.
  int32_t j = int32_t(x * float(1.27323954473516));
  j = (j + 1) & ~1;
  const float y = float(j);
  const uint32_t swap_sign_sin = uint32_t(j & 4) << 29;
  const bool poly_mask = (j & 2) == 0;
  const uint32_t sign_cos = uint32_t(~(j - 2) & 4) << 29;
  sign_sin ^= swap_sign_sin;

  x = std::fma(y, -0.78515625f, x);
  x = std::fma(y, float(-2.4187564849853515625e-4), x);
  x = std::fma(y, float(-3.77489497744594108e-8), x);

  const float z = x * x;
  float yc = float(2.443315711809948E-005);
  yc = std::fma(yc, z, float(-1.388731625493765E-003));
  yc = std::fma(yc, z, float(4.166664568298827E-002));
  yc = yc * z;
  yc = std::fma(yc, z, -(z * 0.5f));
  yc = yc + 1.0f;

  float ys = float(-1.9515295891E-4);
  ys = std::fma(ys, z, float(8.3321608736E-3));
  ys = std::fma(ys, z, float(-1.6666654611E-1));
  ys = ys * z;
  ys = std::fma(ys, x, x);

  // The AVX code selects with and/andnot masks and then adds/subtracts the pieces; keep the same
  // arithmetic so signed zeros come out the same.
  const float ysin2 = poly_mask ? ys : 0.0f;
  const float ysin1 = poly_mask ? 0.0f : yc;
  const float rest2 = ys - ysin2;
  const float rest1 = yc - ysin1;
  *sin_out = bits_to_float(float_to_bits(ysin1 + ysin2) ^ sign_sin);
  *cos_out = bits_to_float(float_to_bits(rest1 + rest2) ^ sign_cos);
}

// normal_fill_16_AVX2 with mean 0, std 1: uniforms in data[0, 16) become normals in place, lane j
// pairing with lane j + 8. The final fmadd(n, std=1, mean=0) is the identity and is left out.
void normal_fill_16(float* data) {
  const float two_pi = float(2.0 * 3.14159265358979323846);
  for (int j = 0; j < 8; ++j) {
    const float u1 = 1.0f - data[j];  // [0, 1) -> (0, 1] for the log
    const float u2 = data[j + 8];
    const float radius = std::sqrt(-2.0f * cephes_log(u1));
    const float theta = two_pi * u2;
    float s, c;
    cephes_sincos(theta, &s, &c);
    data[j] = radius * c;
    data[j + 8] = radius * s;
  }
}

}  // namespace

TorchGenerator::TorchGenerator(uint64_t seed) : seed_(seed) {
  state_[0] = uint32_t(seed & 0xffffffffu);
  for (int j = 1; j < kStateN; ++j) {
    state_[j] = 1812433253u * (state_[j - 1] ^ (state_[j - 1] >> 30)) + uint32_t(j);
  }
  left_ = 1;  // the first draw regenerates the state, as in torch
  next_ = 0;
}

void TorchGenerator::regenerate_state() {
  auto twist = [](uint32_t u, uint32_t v) {
    const uint32_t mixed = (u & 0x80000000u) | (v & 0x7fffffffu);
    return (mixed >> 1) ^ ((v & 1u) ? 0x9908b0dfu : 0u);
  };
  int i = 0;
  for (; i < kStateN - kStateM; ++i) state_[i] = state_[i + kStateM] ^ twist(state_[i], state_[i + 1]);
  for (; i < kStateN - 1; ++i) state_[i] = state_[i + kStateM - kStateN] ^ twist(state_[i], state_[i + 1]);
  state_[i] = state_[i + kStateM - kStateN] ^ twist(state_[i], state_[0]);
  left_ = kStateN;
  next_ = 0;
}

uint32_t TorchGenerator::next_u32() {
  if (--left_ == 0) regenerate_state();
  uint32_t y = state_[next_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

uint64_t TorchGenerator::next_u64() {
  const uint64_t hi = next_u32();
  const uint64_t lo = next_u32();
  return (hi << 32) | lo;
}

float TorchGenerator::uniform_float() {
  return float(next_u32() & ((1u << 24) - 1)) * (1.0f / float(1u << 24));
}

double TorchGenerator::uniform_double() {
  return double(next_u64() & ((uint64_t(1) << 53) - 1)) * (1.0 / double(uint64_t(1) << 53));
}

double TorchGenerator::normal_double() {
  if (next_double_normal_) {
    const double cached = *next_double_normal_;
    next_double_normal_.reset();
    return cached;
  }
  const double u1 = uniform_double();
  const double u2 = uniform_double();
  const double r = std::sqrt(-2.0 * std::log1p(-u2));
  const double theta = 2.0 * 3.14159265358979323846 * u1;
  next_double_normal_ = r * std::sin(theta);
  return r * std::cos(theta);
}

void TorchGenerator::randn_fill(float* out, int64_t n) {
  if (n < 16) {
    for (int64_t i = 0; i < n; ++i) out[i] = float(normal_double());
    return;
  }
  for (int64_t i = 0; i < n; ++i) out[i] = uniform_float();
  for (int64_t i = 0; i + 16 <= n; i += 16) normal_fill_16(out + i);
  if (n % 16 != 0) {
    // torch redraws the last 16 uniforms (overlapping the last full block) and recomputes them.
    float* tail = out + n - 16;
    for (int i = 0; i < 16; ++i) tail[i] = uniform_float();
    normal_fill_16(tail);
  }
}

Tensor TorchGenerator::randn(const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::F32);
  randn_fill(t.data<float>(), t.numel());
  return t;
}

}  // namespace rt
