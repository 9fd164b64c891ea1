// Storage dtypes and the scalar conversions between them. Compute on the CPU is float32; other
// dtypes are storage formats converted on load or at kernel boundaries.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace rt {

enum class DType : uint8_t { F32, F16, BF16, I64, F8E4M3 };
inline constexpr int kDTypeCount = 5;

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "f32", "f16", "bf16", "i64", "f8_e4m3"
bool dtype_is_float(DType t);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even, NaN kept quiet.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
// OCP FP8 E4M3 (FN variant: no infinities, 0x7f/0xff are NaN), as torch.float8_e4m3fn.
float f8e4m3_to_f32(uint8_t v);
// Round to nearest even; beyond ±448 saturates to ±448 (the FN variant has no infinity; as CUDA's
// __NV_SATFINITE conversion), NaN -> 0x7f.
uint8_t f32_to_f8e4m3(float f);

}  // namespace rt
