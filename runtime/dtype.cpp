#include "dtype.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/check.h"

namespace rt {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::I64: return 8;
    case DType::F8E4M3: return 1;
  }
  CHECK(false, "unknown dtype ", int(t));
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::I64: return "i64";
    case DType::F8E4M3: return "f8_e4m3";
  }
  return "?";
}

bool dtype_is_float(DType t) { return t != DType::I64; }

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h >> 15) << 31;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t man = h & 0x3ff;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: value = man * 2^-24
      float f = std::ldexp(float(man), -24);
      return sign ? -f : f;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (man << 13);
  } else {
    u = sign | ((exp + 112) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000);
  const float a = std::fabs(f);
  if (std::isnan(f)) return sign | 0x7e00;
  if (a >= 65520.0f) return sign | 0x7c00;  // rounds to infinity
  if (a < 6.103515625e-05f) {               // subnormal or zero: quantize to 2^-24 steps, ties to even
    const float q = std::nearbyint(a * 16777216.0f);
    return sign | uint16_t(q);
  }
  uint32_t mag = u & 0x7fffffffu;
  // Round mantissa from 23 to 10 bits, nearest even.
  mag += 0xfffu + ((mag >> 13) & 1u);
  const uint32_t exp = (mag >> 23) - 112;
  return sign | uint16_t((exp << 10) | ((mag >> 13) & 0x3ff));
}

float f8e4m3_to_f32(uint8_t v) {
  const bool neg = v & 0x80;
  const int exp = (v >> 3) & 0xf;
  const int man = v & 0x7;
  if (exp == 0xf && man == 0x7) return std::numeric_limits<float>::quiet_NaN();
  float r;
  if (exp == 0) r = std::ldexp(float(man), -9);  // subnormal: man/8 * 2^-6
  else r = std::ldexp(1.0f + float(man) / 8.0f, exp - 7);
  return neg ? -r : r;
}

uint8_t f32_to_f8e4m3(float f) {
  if (std::isnan(f)) return 0x7f;
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  const float a = std::fabs(f);
  if (a >= 448.f) return sign | 0x7e;
  // a = q · 2^(e-3): q in [8, 16) for a normal of exponent e >= -6; below 2^-6 the subnormals share the
  // smallest normal's step 2^-9 (e = -6, q < 8). a / step is exact (a power-of-two step), so nearbyint's
  // rounding (to nearest even) is the only one.
  int e = 0;
  std::frexp(a, &e);
  e = std::max(e - 1, -6);
  int q = int(std::nearbyint(a / std::ldexp(1.f, e - 3)));
  if (q == 16) q = 8, ++e;  // rounded up into the next binade (a < 448 keeps e <= 8)
  if (q < 8) return sign | uint8_t(q);  // subnormal
  return sign | uint8_t((e + 7) << 3) | uint8_t(q - 8);
}

}  // namespace rt
