// embedding and rope on the GPU against the CPU reference on the same (rounded) values: packed and
// element paths, strided ids/tables/x, q of a fused qkv tensor, cos/sin in f32 next to 16-bit x, empty
// inputs. embedding is a gather, so it must match exactly; rope uses op_check.h's tolerances.
#include <cmath>
#include <vector>

#include "harness/gpu.h"
#include "ops.h"
#include "op_check.h"
#include "rng.h"

#include <catch2/catch.hpp>

using rt::DType;
using rt::Shape;
using rt::Tensor;

namespace {

Tensor random_ids(rt::TorchGenerator& gen, const Shape& shape, int64_t vocab) {
  std::vector<int64_t> v(size_t(rt::shape_numel(shape)));
  for (auto& id : v) id = int64_t(gen.next_u32() % uint32_t(vocab));
  return Tensor::from_vector_i64(v, shape);
}

void embedding_gather(DType dtype) {
  DITRUN_GPU_OR_SKIP(ctx, dtype);
  const rt::Context& cpu = test::cpu_context();
  rt::TorchGenerator gen(301);
  const auto packed = opcheck::input(ctx, gen.randn({50, 24}));
  const auto odd = opcheck::input(ctx, gen.randn({50, 13}));
  const auto wide = opcheck::input(ctx, gen.randn({50, 40}));
  const auto cols = opcheck::input(ctx, gen.randn({24, 50}));
  const Tensor ids = random_ids(gen, {3, 7}, 50), ids_base = random_ids(gen, {7, 3}, 50);
  const Tensor ids_dev = rt::to_ctx(ctx, ids);
  const Tensor ids_view = ids_base.transpose(0, 1), ids_view_dev = rt::to_ctx(ctx, ids_base).transpose(0, 1);
  struct Case {
    Tensor table_dev, table;
  };
  const Case cases[] = {{packed.dev, packed.host},
                        {odd.dev, odd.host},
                        {wide.dev.slice(1, 8, 32), wide.host.slice(1, 8, 32)},  // rows 40 apart, aligned
                        {wide.dev.slice(1, 3, 27), wide.host.slice(1, 3, 27)},  // odd offset
                        {cols.dev.transpose(0, 1), cols.host.transpose(0, 1)}};  // strided columns
  for (const Case& t : cases) {
    INFO("table " << t.table.str() << " strides " << rt::shape_str(t.table.strides()));
    OPCHECK_MATCH(ctx, rt::embedding(ctx, ids_dev, t.table_dev), rt::embedding(cpu, ids, t.table), 0.0);
    OPCHECK_MATCH(ctx, rt::embedding(ctx, ids_view_dev, t.table_dev), rt::embedding(cpu, ids_view, t.table), 0.0);
  }
  const Tensor none = rt::embedding(ctx, rt::to_ctx(ctx, Tensor::from_vector_i64({}, {0})), packed.dev);
  CHECK(none.shape() == Shape{0, 24});
}
OPCHECK_DTYPES("layout.embedding_gather", embedding_gather)

// The CPU CHECK-fails on an id outside the table; the GPU writes a row of NaN instead.
TEST_CASE("layout.embedding_out_of_range_is_nan", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  rt::TorchGenerator gen(302);
  const Tensor table = rt::to_ctx(ctx, gen.randn({10, 16}));
  const Tensor out = rt::to_host(ctx, rt::embedding(ctx, rt::to_ctx(ctx, Tensor::from_vector_i64({2, 10, -1, 9}, {4})), table));
  const Tensor host_table = rt::to_host(ctx, table);
  for (int64_t j = 0; j < 16; ++j) {
    CHECK(out.at({0, j}) == host_table.at({2, j}));
    CHECK(std::isnan(out.at({1, j})));
    CHECK(std::isnan(out.at({2, j})));
    CHECK(out.at({3, j}) == host_table.at({9, j}));
  }
}

void rope_views(DType dtype) {
  DITRUN_GPU_OR_SKIP(ctx, dtype);
  const rt::Context& cpu = test::cpu_context();
  rt::TorchGenerator gen(303);
  using View = opcheck::Input;
  std::vector<View> xs;
  const auto plain = opcheck::input(ctx, gen.randn({2, 9, 3, 128}));
  xs.push_back({plain.dev, plain.host});
  const auto qkv = opcheck::input(ctx, gen.randn({2, 9, 3 * 3 * 128}));
  xs.push_back({qkv.dev.view({2, 9, 3, 3, 128}).select(2, 0), qkv.host.view({2, 9, 3, 3, 128}).select(2, 0)});
  const auto bhld = opcheck::input(ctx, gen.randn({2, 3, 9, 16}));
  xs.push_back({bhld.dev.permute({0, 2, 1, 3}), bhld.host.permute({0, 2, 1, 3})});
  const auto dh = opcheck::input(ctx, gen.randn({2, 9, 16, 3}));
  xs.push_back({dh.dev.transpose(2, 3), dh.host.transpose(2, 3)});  // last dim strided
  const auto d6 = opcheck::input(ctx, gen.randn({2, 9, 3, 6}));
  xs.push_back({d6.dev, d6.host});
  const auto e = opcheck::input(ctx, gen.randn({0, 9, 3, 8}));
  xs.push_back({e.dev, e.host});
  for (const View& x : xs) {
    const auto [c, s] = opcheck::rope_tables(gen, 9, x.host.size(3) / 2);
    INFO(x.host.str() << " strides " << rt::shape_str(x.host.strides()));
    // cos/sin in the context's dtype, then in f32 next to (possibly) 16-bit x.
    const auto cd = opcheck::input(ctx, c), sd = opcheck::input(ctx, s);
    OPCHECK_MATCH(ctx, rt::rope(ctx, x.dev, cd.dev, sd.dev), rt::rope(cpu, x.host, cd.host, sd.host), opcheck::tolerance(ctx));
    const Tensor c32 = rt::to_device(ctx, c, ctx.device(), DType::F32), s32 = rt::to_device(ctx, s, ctx.device(), DType::F32);
    OPCHECK_MATCH(ctx, rt::rope(ctx, x.dev, c32, s32), rt::rope(cpu, x.host, c, s), opcheck::tolerance(ctx));
  }
}
OPCHECK_DTYPES("layout.rope_views", rope_views)

}  // namespace
