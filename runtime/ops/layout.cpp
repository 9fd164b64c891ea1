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
  return cpu::concat(ctx, xs, d);
}

Tensor embedding(const Context& ctx, const Tensor& ids, const Tensor& table) {
  CHECK(ids.dtype() == DType::I64, "embedding: ids must be i64, got ", ids.str());
  detail::require_f32("embedding", "table", table);
  detail::require_rank("embedding", "table", table, 2);
  return cpu::embedding(ctx, ids, table);
}

Tensor rope(const Context& ctx, const Tensor& x, const Tensor& cos, const Tensor& sin) {
  detail::require_f32("rope", "x", x);
  detail::require_rank("rope", "x", x, 4);
  CHECK(x.size(3) % 2 == 0, "rope: head dim ", x.size(3), " must be even");
  const Shape table{x.size(1), x.size(3) / 2};
  CHECK(cos.shape() == table && sin.shape() == table, "rope: cos ", cos.str(), " / sin ", sin.str(), " must be ",
        shape_str(table), " for x ", x.str());
  return cpu::rope(ctx, x, cos, sin);
}

}  // namespace rt
