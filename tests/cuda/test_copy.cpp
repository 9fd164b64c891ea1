// rt::copy_ on the GPU against the CPU op: strided destination windows of a device buffer, strided
// sources, and dtype conversion on the way. Conversions round to nearest even on both sides (host
// f32_to_bf16/f16, device __float2bfloat16_rn/__float2half_rn), so the results must match exactly.
#include <vector>

#include "harness/compare.h"
#include "harness/gpu.h"
#include "ops.h"
#include "rng.h"

#include <catch2/catch.hpp>

using rt::DType;
using rt::Tensor;

namespace {

// Copies a permuted [5, 3, 7] view of src_host (as src_dtype) into the permuted window of a [4, 9, 7]
// buffer (dst_dtype) on the device, and the same on the CPU with each side rounded as the device
// stores it; the whole buffers must agree.
void check_copy(DType ctx_dtype, DType src_dtype, DType dst_dtype) {
  DITRUN_GPU_OR_SKIP(ctx, ctx_dtype);
  const rt::Context& cpu = test::cpu_context();
  rt::TorchGenerator gen(31);
  auto rounded = [](const Tensor& t, DType d) { return t.to(d).to(DType::F32); };
  const Tensor base_host = rounded(gen.randn({4, 9, 7}), dst_dtype);
  const Tensor src_host = rounded(gen.randn({7, 3, 5}), src_dtype);
  Tensor base_dev = rt::to_device(ctx, base_host, ctx.device(), dst_dtype);
  const Tensor src_dev = rt::to_device(ctx, src_host, ctx.device(), src_dtype);
  auto window = [](const Tensor& b) { return b.slice(0, 1, 4).slice(1, 2, 9).permute({0, 2, 1}).slice(1, 1, 6); };
  auto source = [](const Tensor& s) { return s.permute({1, 2, 0}); };  // [3, 5, 7], last dim of stride 15
  REQUIRE(window(base_host).shape() == source(src_host).shape());
  rt::copy_(ctx, window(base_dev), source(src_dev));
  Tensor want = base_host.clone();
  rt::copy_(cpu, window(want), source(src_host));
  want = rounded(want, dst_dtype);
  const Tensor got = rt::to_host(ctx, base_dev);
  const test::Diff d = test::compare(got, want);
  INFO(rt::dtype_name(src_dtype) << " -> " << rt::dtype_name(dst_dtype) << ": " << d.str());
  CHECK(!d.nan_mismatch);
  CHECK(d.max_abs == 0.0);
}

}  // namespace

TEST_CASE("copy.gpu_f32_strided_matches_cpu", "[cuda]") { check_copy(DType::F32, DType::F32, DType::F32); }
TEST_CASE("copy.gpu_f32_to_bf16_matches_cpu", "[cuda]") { check_copy(DType::BF16, DType::F32, DType::BF16); }
TEST_CASE("copy.gpu_bf16_to_f32_matches_cpu", "[cuda]") { check_copy(DType::BF16, DType::BF16, DType::F32); }
TEST_CASE("copy.gpu_f32_to_f16_matches_cpu", "[cuda]") { check_copy(DType::F16, DType::F32, DType::F16); }
