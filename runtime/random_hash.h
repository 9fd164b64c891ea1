// A counter-based hash to uniform floats, shared by the CPU and CUDA fill_uniform so that a seeded random
// model holds the same numbers on every device (splitmix64 finalizer of seed + index).
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define DITRUN_HOST_DEVICE __host__ __device__
#else
#define DITRUN_HOST_DEVICE
#endif

namespace rt {

DITRUN_HOST_DEVICE inline float uniform_from_hash(uint64_t seed, uint64_t index) {
  uint64_t z = seed + (index + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return float(z >> 40) * (1.0f / 16777216.0f);  // 24 random bits -> [0, 1)
}

}  // namespace rt
