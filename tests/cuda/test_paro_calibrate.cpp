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

namespace {

// Largest |a - b| / max(1, |b|) over two tensors of one shape (a from the device, b from the host).
double worst_relative(const rt::Context& ctx, const rt::Tensor& dev, const rt::Tensor& host) {
  const rt::Tensor a = rt::to_device(ctx, dev, rt::Device::cpu(), rt::DType::F32).contiguous();
  const rt::Tensor b = host.contiguous();
  REQUIRE(a.numel() == b.numel());
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.data<float>()[i], y = b.data<float>()[i];
    worst = std::max(worst, std::abs(x - y) / std::max(1.0, std::abs(y)));
  }
  return worst;
}

}  // namespace

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
    // The same matrix-product form on the host: the device's kernels alone against the CPU's.
    std::vector<double> host_products;
    sattn::paro_block_sums_matmul(test::cpu_context(), q_host, k_host, 0.09f, t, 128, 64, host_products);
    double worst_form = 0;
    for (size_t i = 0; i < got.size(); ++i)
      worst_form = std::max(worst_form, std::abs(got[i] - host_products[i]) / std::max(1.0, std::abs(host_products[i])));
    // Stage by stage for head 0, so that a failure names the op: scores, then probabilities.
    const rt::Context& cpu = test::cpu_context();
    const auto head0 = [&](const rt::Context& c, const rt::Tensor& x) {
      return rt::reshape(c, rt::cast(c, x, rt::DType::F32).slice(2, 0, 1), {L, D});
    };
    const rt::Tensor s_dev = rt::matmul(ctx, head0(ctx, q), head0(ctx, k).transpose(0, 1));
    const rt::Tensor s_host = rt::matmul(cpu, head0(cpu, q_host), head0(cpu, k_host).transpose(0, 1));
    const rt::Tensor p_dev = rt::softmax(ctx, rt::affine(ctx, s_dev, 0.09f, 0.f));
    const rt::Tensor p_host = rt::softmax(cpu, rt::affine(cpu, s_host, 0.09f, 0.f));
    const double worst_s = worst_relative(ctx, s_dev, s_host), worst_p = worst_relative(ctx, p_dev, p_host);
    INFO("video " << video << ": scores " << worst_s << ", probabilities " << worst_p << ", sums against the host's "
                  "product form " << worst_form << ", against the loop " << worst);
    CHECK(worst_s <= 1e-4);
    CHECK(worst_p <= 1e-6);  // probabilities are ~1e-3: 1e-6 is 0.1%
    // f32 products on the device against f32 scores and double sums on the host.
    CHECK(worst_form <= 1e-4);
    CHECK(worst <= 1e-4);
    CHECK(total > 100.0);
  }
}
