// rt::copy_ on the CPU: strided destination and source views (permuted, sliced, broadcast), elements
// outside the destination view left alone, scalars and empty tensors.
#include <vector>

#include "ops.h"

#include <catch2/catch.hpp>

using rt::Shape;
using rt::Tensor;

namespace {

Tensor iota(const Shape& shape, float start) {
  std::vector<float> v(size_t(rt::shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = start + float(i);
  return Tensor::from_vector(v, shape);
}

}  // namespace

TEST_CASE("copy.strided_views_both_sides", "[copy]") {
  const rt::Context ctx;
  // dst: a [3, 4, 5] window, permuted to [5, 3, 4], of a [4, 6, 5] buffer; src: a transposed [5, 3, 4].
  Tensor base = iota({4, 6, 5}, -1000.f);
  const Tensor before = base.clone();
  const Tensor dst = base.slice(0, 1, 4).slice(1, 2, 6).permute({2, 0, 1});
  const Tensor src = iota({5, 4, 3}, 0.f).transpose(1, 2);
  REQUIRE(dst.shape() == src.shape());
  rt::copy_(ctx, dst, src);
  for (int64_t a = 0; a < 5; ++a)
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t c = 0; c < 4; ++c) CHECK(dst.at({a, b, c}) == src.at({a, b, c}));
  // Everything outside the window keeps its value.
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 6; ++j)
      for (int64_t k = 0; k < 5; ++k)
        if (!(i >= 1 && j >= 2)) CHECK(base.at({i, j, k}) == before.at({i, j, k}));
}

TEST_CASE("copy.broadcast_source_scalar_and_empty", "[copy]") {
  const rt::Context ctx;
  Tensor dst = Tensor::zeros({3, 7});
  const Tensor row = iota({7}, 1.f);
  rt::copy_(ctx, dst, row.expand({3, 7}));  // stride-0 source rows
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 7; ++j) CHECK(dst.at({i, j}) == float(j + 1));
  Tensor one = Tensor::zeros({1});
  rt::copy_(ctx, one.select(0, 0), iota({1}, 5.f).select(0, 0));  // rank 0 views
  CHECK(one.at({0}) == 5.f);
  rt::copy_(ctx, Tensor::zeros({0, 4}), Tensor::zeros({0, 4}));
}
