// Comparison helpers for tests: relative L2 error in float64 (the parity-fixture rule) and the
// worst element, so a failure says where and by how much.
#pragma once
#include <string>

#include "tensor.h"

namespace test {

struct Diff {
  double rel_l2 = 0;      // ||a-b|| / ||b||
  double max_abs = 0;     // max |a-b|
  int64_t worst = -1;     // row-major index of max_abs
  bool nan_mismatch = false;
  std::string str() const;
};

// `got` and `want` must have the same shape (any float dtype, any strides).
Diff compare(const rt::Tensor& got, const rt::Tensor& want);

}  // namespace test
