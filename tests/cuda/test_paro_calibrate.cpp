// PARO calibration statistics on the GPU: paro_block_sums on device tensors (the matrix-product form, q and k
// never leave the device) against the CPU loop reference on the same bf16-rounded inputs.
#include <algorithm>
#include <cmath>
#include <vector>

#include <catch2/catch.hpp>

#include "harness/gpu.h"
#include "ops.h"
#include "rng.h"
#include "sparse_attention/methods/paro_calibrate.h"

TEST_CASE("sparse_attention.paro_block_sums_on_device", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, rt::DType::BF16);
  for (const bool video : {false, true}) {
    sattn::TokenLayout t;
    t.grid[0] = video ? 3 : 1, t.grid[1] = 24, t.grid[2] = video ? 20 : 32;
    t.text_len = 40;
    t.text_before = !video;
    const int64_t L = t.seq_len(), H = 4, D = 128;
    rt::TorchGenerator g(video ? 71 : 70);
    const rt::Tensor q = rt::to_device(ctx, g.randn({1, L, H, D}), ctx.device(), rt::DType::BF16);
    const rt::Tensor k = rt::to_device(ctx, g.randn({1, L, H, D}), ctx.device(), rt::DType::BF16);
    std::vector<double> got, want;
    sattn::paro_block_sums(ctx, q, k, 0.09f, t, 128, 64, got);
    const rt::Tensor q_host = rt::to_device(ctx, q, rt::Device::cpu(), rt::DType::F32);
    const rt::Tensor k_host = rt::to_device(ctx, k, rt::Device::cpu(), rt::DType::F32);
    sattn::paro_block_sums(test::cpu_context(), q_host, k_host, 0.09f, t, 128, 64, want);
    REQUIRE(got.size() == want.size());
    double worst = 0, total = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      worst = std::max(worst, std::abs(got[i] - want[i]) / std::max(1.0, std::abs(want[i])));
      total += want[i];
    }
    // f32 products on the device against f32 scores and double sums on the host.
    CHECK(worst <= 1e-4);
    CHECK(total > 100.0);
  }
}
