// Shared argument checks for runtime/ops/*.cpp. A failure is a bug in the caller (model code), so
// these CHECK and print the op name with the offending tensors.
#pragma once
#include "tensor.h"

namespace rt::detail {

inline void require_f32(const char* op, const char* arg, const Tensor& t) {
  DITRUN_CHECK(t.defined(), op, ": ", arg, " is undefined");
  DITRUN_CHECK(t.dtype() == DType::F32, op, ": ", arg, " must be f32, got ", t.str());
  DITRUN_CHECK(t.device().is_cpu(), op, ": ", arg, " is on ", device_str(t.device()), "; no backend for it here");
}

inline void require_rank(const char* op, const char* arg, const Tensor& t, int64_t rank) {
  DITRUN_CHECK(t.dim() == rank, op, ": ", arg, " must have rank ", rank, ", got ", t.str());
}

inline void require_vec(const char* op, const char* arg, const Tensor& t, int64_t n) {
  if (!t.defined()) return;
  require_f32(op, arg, t);
  DITRUN_CHECK(t.dim() == 1 && t.size(0) == n, op, ": ", arg, " must be [", n, "], got ", t.str());
}

}  // namespace rt::detail
