#include "cpu/cpu_ops.h"
#include "ops.h"
#include "ops/validate.h"

namespace rt {

Tensor concat(const Context& ctx, const std::vector<Tensor>& xs, int64_t dim) {
  CHECK(!xs.empty(), "concat: no tensors");
  const int64_t rank = xs[0].dim();
  const int64_t d = dim < 0 ? dim + rank : dim;
  CHECK(d >= 0 && d < rank, "concat: dim ", dim, " out of range for ", xs[0].str());
  for (const Tensor& t : xs) {
    CHECK(t.dtype() == xs[0].dtype() && t.dim() == rank, "concat: ", t.str(), " vs ", xs[0].str());
    for (int64_t i = 0; i < rank; ++i)
      CHECK(i == d || t.size(i) == xs[0].size(i), "concat along ", d, ": ", t.str(), " vs ", xs[0].str());
  }
  if (xs[0].device().is_cuda()) {
    for (const Tensor& t : xs) detail::require_float(ctx, "concat", "input", t);
    Shape shape = xs[0].shape();
    shape[size_t(d)] = 0;
    for (const Tensor& t : xs) shape[size_t(d)] += t.size(d);
    Tensor out = empty(ctx, shape, xs[0].dtype());
    int64_t at = 0;
    for (const Tensor& t : xs) {
      RT_CUDA_DO(copy(ctx, out.slice(d, at, at + t.size(d)), t));
      at += t.size(d);
    }
    return out;
  }
  return cpu::concat(ctx, xs, d);
}

Tensor embedding(const Context& ctx, const Tensor& ids, const Tensor& table) {
  CHECK(ids.dtype() == DType::I64, "embedding: ids must be i64, got ", ids.str());
  detail::require_float(ctx, "embedding", "table", table);
  CHECK(ids.device() == table.device(), "embedding: ids ", ids.str(), " on ", device_str(ids.device()), ", table on ",
        device_str(table.device()));
  detail::require_rank("embedding", "table", table, 2);
  if (table.device().is_cuda()) RT_CUDA(embedding(ctx, ids, table));
  return cpu::embedding(ctx, ids, table);
}

Tensor rope(const Context& ctx, const Tensor& x, const Tensor& cos, const Tensor& sin) {
  detail::require_float(ctx, "rope", "x", x);
  detail::require_rank("rope", "x", x, 4);
  CHECK(x.size(3) % 2 == 0, "rope: head dim ", x.size(3), " must be even");
  const Shape table{x.size(1), x.size(3) / 2};
  CHECK(cos.shape() == table && sin.shape() == table, "rope: cos ", cos.str(), " / sin ", sin.str(), " must be ",
        shape_str(table), " for x ", x.str());
  detail::require_float(ctx, "rope", "cos", cos);
  detail::require_float(ctx, "rope", "sin", sin);
  if (x.device().is_cuda()) RT_CUDA(rope(ctx, x, cos, sin));
  return cpu::rope(ctx, x, cos, sin);
}

}  // namespace rt
