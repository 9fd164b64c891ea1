#include <algorithm>

#include "cpu/cpu_ops.h"

namespace rt::cpu {

// Row by row over the outer dims (an odometer per row), a strided loop over the innermost dim.
void copy_(const Context& ctx, const Tensor& dst, const Tensor& src) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  float* d = static_cast<float*>(dst.raw_data());
  const float* s = static_cast<const float*>(src.raw_data());
  const int64_t rank = dst.dim();
  if (rank == 0) {
    d[0] = s[0];
    return;
  }
  const int64_t inner = dst.size(-1), ds = dst.strides().back(), ss = src.strides().back();
  ctx.parallel_for(n / inner, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t od = 0, os = 0, rem = r;
      for (int64_t k = rank - 2; k >= 0; --k) {
        const int64_t i = rem % dst.size(k);
        rem /= dst.size(k);
        od += i * dst.strides()[size_t(k)];
        os += i * src.strides()[size_t(k)];
      }
      for (int64_t j = 0; j < inner; ++j) d[od + j * ds] = s[os + j * ss];
    }
  }, std::max<int64_t>(1, (1 << 16) / inner));
}

}  // namespace rt::cpu
