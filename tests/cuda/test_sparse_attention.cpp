// The block-sparse attention kernels (kernels/sparse/cuda/block_sparse.cu on mma.sync, block_sparse_sm90.cu
// on wgmma) against the dense CPU reference
// with an explicit additive bias: 0 where allowed(rule, q, k) holds and the layout visits the pair's tile
// (for an exact plan that is allowed() alone), -inf elsewhere. The CPU gets the very values the GPU holds
// (the bf16/f16-rounded inputs, converted back to f32).
// Tolerances, relative L2 over the output: bf16/f16 <= 1e-2, attention class: the kernel rounds P to the
// 16-bit type before P·V and rounds O on output (2^-9 relative each in bf16), the f32 CPU does not. On top,
// flash-attention's relative rule (design.md §3.4): error <= 2 x error(the dense CUDA reference run with
// the same bias in the same dtype, a naive kernel with the same roundings) + 1e-3.
// Rows that attend no key (no visited tile, or nothing allowed in the visited ones) are left out of the
// comparison (set to 0 on both sides) and must be exactly 0 on the GPU.
// Every kernel case runs once per kernel (BLOCK_SPARSE_CASE): "sparse_attention.<case>" on the sm80 kernel
// and "sparse_attention.sm90.<case>" on the wgmma one, which skips (with the reason) off compute capability
// 9.0 or in builds without sm_90a code. Both meet the same bounds.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "harness/compare.h"
#include "cuda/sparse_kernel_skip.h"
#include "harness/gpu.h"
#include "ops.h"
#include "rng.h"
#include "sparse_attention/attention.h"
#include "sparse_attention/block_layout.h"
#include "sparse_attention/kernels/sparse/block_sparse.h"
#include "sparse_attention/kernels/sparse/block_sparse_quant.h"
#include "sparse_attention/kernels/sparse/tile_boxes.h"
#include "sparse_attention/methods/gna.h"
#include "sparse_attention/methods/method_spec.h"
#include "sparse_attention/methods/plan.h"
#include "sparse_attention/reference/quant_cpu.h"
#include "sparse_attention/reference/sparse_cpu.h"
#if DITRUN_WITH_CUDA
#include "sparse_attention/reference/cuda/dense_cuda.h"
#endif

#include <catch2/catch.hpp>

using rt::DType;
using rt::Tensor;
using sattn::BlockLayout;
using sattn::MaskRule;
using sattn::kernels::kBlockSparseKvTile;
using sattn::kernels::kBlockSparseQTile;

namespace {

constexpr double kTol16 = 1e-2;
constexpr double kRelativeRuleAtol = 1e-3;

// Device params and the CPU params holding the same values in f32.
struct Problem {
  sattn::AttentionParams gpu, cpu;
};

enum class Views {
  Contiguous,
  FusedQkv,        // q, k, v are slices of one [B, L, 3, H, D] tensor (strided, 16-byte aligned rows)
  FusedMisaligned  // as FusedQkv, but v starts one element into its rows (the kernel copies it first)
};

Problem make_problem(const rt::Context& ctx, int64_t b, int64_t l, int64_t h, int64_t d, Views views, uint64_t seed) {
  rt::TorchGenerator gen(seed);
  Problem p;
  if (views == Views::Contiguous) {
    p.gpu.q = rt::to_ctx(ctx, gen.randn({b, l, h, d}));
    p.gpu.k = rt::to_ctx(ctx, gen.randn({b, l, h, d}));
    p.gpu.v = rt::to_ctx(ctx, gen.randn({b, l, h, d}));
  } else {
    const Tensor qkv = rt::to_ctx(ctx, gen.randn({b, l, 3, h, d}));
    p.gpu.q = qkv.select(2, 0), p.gpu.k = qkv.select(2, 1), p.gpu.v = qkv.select(2, 2);
    if (views == Views::FusedMisaligned) p.gpu.v = rt::to_ctx(ctx, gen.randn({b, l, h, d + 8})).slice(3, 1, 1 + d);
  }
  p.cpu.q = rt::to_host(ctx, p.gpu.q), p.cpu.k = rt::to_host(ctx, p.gpu.k), p.cpu.v = rt::to_host(ctx, p.gpu.v);
  return p;
}

// make_problem's contiguous case in f16 (randn rounded to f16 on the device, the CPU side holding those values).
Problem make_f16_problem(const rt::Context& ctx, int64_t b, int64_t l, int64_t h, int64_t d, uint64_t seed) {
  rt::TorchGenerator gen(seed);
  Problem p;
  p.gpu.q = rt::to_device(ctx, gen.randn({b, l, h, d}), ctx.device(), DType::F16);
  p.gpu.k = rt::to_device(ctx, gen.randn({b, l, h, d}), ctx.device(), DType::F16);
  p.gpu.v = rt::to_device(ctx, gen.randn({b, l, h, d}), ctx.device(), DType::F16);
  p.cpu.q = rt::to_host(ctx, p.gpu.q), p.cpu.k = rt::to_host(ctx, p.gpu.k), p.cpu.v = rt::to_host(ctx, p.gpu.v);
  return p;
}

bool all_finite(const Tensor& host) {
  for (float x : host.to_vector())
    if (!std::isfinite(x)) return false;
  return true;
}

// The mask the layout defines for batch b, head h as a [B, H, L, L] f32 bias (natural indices): 0 where
// the pair's tile is visited and allowed() holds, -inf elsewhere. *attends[(b·L + q)·H + h] says whether
// query q of (b, h) attends any key. Also checks that every pair of a full tile is allowed.
Tensor layout_bias(const BlockLayout& l, int64_t batch, int64_t heads, std::vector<char>* attends) {
  const int64_t len = l.seq_len;
  Tensor bias = Tensor::full({batch, heads, len, len}, -INFINITY);
  float* out = bias.data<float>();
  attends->assign(size_t(batch * len * heads), 0);
  int64_t full_pairs_refused = 0;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t qt = 0; qt < l.num_q_tiles(); ++qt) {
        auto token = [&](int64_t pos) { return l.token(h, pos); };  // head h's layout order
        const int64_t e = l.entry(b, h, qt);
        auto visit = [&](int32_t kt, bool full) {
          for (int64_t qp = qt * l.q_tile; qp < std::min(len, (qt + 1) * l.q_tile); ++qp)
            for (int64_t kp = int64_t(kt) * l.kv_tile; kp < std::min(len, (kt + 1) * l.kv_tile); ++kp) {
              const int64_t qn = token(qp), kn = token(kp);
              const bool ok = sattn::allowed(l.rule, qn, kn);
              if (full && !ok) ++full_pairs_refused;
              if (!ok) continue;
              out[((b * heads + h) * len + qn) * len + kn] = 0.f;
              (*attends)[size_t((b * len + qn) * heads + h)] = 1;
            }
        };
        for (int32_t i = l.full_offsets[size_t(e)]; i < l.full_offsets[size_t(e) + 1]; ++i) visit(l.full_index[size_t(i)], true);
        for (int32_t i = l.partial_offsets[size_t(e)]; i < l.partial_offsets[size_t(e) + 1]; ++i)
          visit(l.partial_index[size_t(i)], false);
      }
  CHECK(full_pairs_refused == 0);
  return bias;
}

// uploaded: the layout goes through upload_layout first and is passed in (the plan-cache path).
Tensor run_block_sparse(const rt::Context& ctx, const sattn::AttentionParams& p, const BlockLayout& l,
                        bool uploaded = false) {
#if DITRUN_WITH_CUDA
  if (!uploaded) return sattn::kernels::cuda::block_sparse_attention(ctx, p, l);
  const sattn::kernels::cuda::UploadedLayout u = sattn::kernels::cuda::upload_layout(ctx, l);
  return sattn::kernels::cuda::block_sparse_attention(ctx, p, l, &u);
#else
  FAIL("block_sparse_attention needs a CUDA build");
  return {};
#endif
}

Tensor run_dense_reference(const rt::Context& ctx, const sattn::AttentionParams& p) {
#if DITRUN_WITH_CUDA
  return sattn::reference::dense_attention_cuda(ctx, p);
#else
  FAIL("dense_attention_cuda needs a CUDA build");
  return {};
#endif
}

// Zeros the rows (b, q, h) that attend nothing; returns how many there are.
int64_t zero_empty_rows(Tensor& host, const std::vector<char>& attends) {
  const int64_t d = host.size(3);
  int64_t n = 0;
  for (size_t r = 0; r < attends.size(); ++r) {
    if (attends[r]) continue;
    ++n;
    std::fill(host.data<float>() + int64_t(r) * d, host.data<float>() + int64_t(r + 1) * d, 0.f);
  }
  return n;
}

// Runs the kernel on `layout` and checks it against the CPU reference with the layout's bias; returns the
// kernel's output on the host.
Tensor check_layout(const rt::Context& ctx, const Problem& p, const BlockLayout& layout, sattn::SparseKernel kernel) {
  REQUIRE(sattn::validate(layout) == "");
  REQUIRE(sattn::kernels::block_sparse_refusal(p.gpu, layout) == "");
  sattn::AttentionParams gpu = p.gpu;
  gpu.sparse_kernel = kernel;
  const int64_t b = p.gpu.q.size(0), h = p.gpu.q.size(2);
  std::vector<char> attends;
  const Tensor bias = layout_bias(layout, b, h, &attends);

  Tensor got = rt::to_host(ctx, run_block_sparse(ctx, gpu, layout));
  REQUIRE(got.shape() == p.cpu.q.shape());
  REQUIRE(all_finite(got));
  const Tensor got_raw = got.clone();

  sattn::AttentionParams cpu = p.cpu;
  cpu.bias = bias;
  cpu.kernel = sattn::DenseKernel::Reference;
  Tensor want = sattn::attention(test::cpu_context(), cpu).contiguous().clone();
  sattn::AttentionParams naive = p.gpu;
  naive.bias = rt::to_device(ctx, bias, ctx.device(), p.gpu.q.dtype());
  Tensor naive_out = rt::to_host(ctx, run_dense_reference(ctx, naive)).contiguous().clone();

  // Rows that attend nothing: exactly zero from the kernel, then out of the comparison.
  const int64_t empty = zero_empty_rows(want, attends);
  zero_empty_rows(naive_out, attends);
  int64_t nonzero = 0;
  for (size_t r = 0; r < attends.size(); ++r)
    if (!attends[r])
      for (int64_t c = 0; c < got.size(3); ++c) nonzero += got.data<float>()[int64_t(r) * got.size(3) + c] != 0.f;
  CHECK(nonzero == 0);
  zero_empty_rows(got, attends);

  const test::Diff fast = test::compare(got, want), slow = test::compare(naive_out, want);
  std::printf("  block_sparse (%s) q %s, tile density %.3f, flop density %.3f, %lld empty rows: %s (dense reference %s)\n",
              sattn::sparse_kernel_name(kernel), p.gpu.q.str().c_str(), layout.tile_density(), layout.flop_density(), (long long)empty, fast.str().c_str(),
              slow.str().c_str());
  CHECK(fast.rel_l2 <= kTol16);
  CHECK(fast.rel_l2 <= 2 * slow.rel_l2 + kRelativeRuleAtol);
  return got_raw;
}

MaskRule grid_rule(int64_t t, int64_t hh, int64_t w, int64_t text_len, bool text_before, int64_t text_valid) {
  MaskRule r;
  r.tokens.grid[0] = t, r.tokens.grid[1] = hh, r.tokens.grid[2] = w;
  r.tokens.text_len = text_len, r.tokens.text_before = text_before, r.tokens.text_valid = text_valid;
  return r;
}

void set3(int64_t (&dst)[3], int64_t a, int64_t b, int64_t c) { dst[0] = a, dst[1] = b, dst[2] = c; }

}  // namespace

// Registers `body` (a function of the kernel) as three test cases: the sm80 kernel under
// "sparse_attention.NAME", the wgmma kernel under "sparse_attention.sm90.NAME" and its warp-specialized
// variant under "sparse_attention.sm90ws.NAME".
#define BLOCK_SPARSE_CASE(NAME, body)                                                      \
  TEST_CASE("sparse_attention." NAME, "[cuda]") { body(sattn::SparseKernel::Sm80); }      \
  TEST_CASE("sparse_attention.sm90." NAME, "[cuda]") { body(sattn::SparseKernel::Sm90); } \
  TEST_CASE("sparse_attention.sm90ws." NAME, "[cuda]") { body(sattn::SparseKernel::Sm90Ws); }

namespace {

// GRAT's group-major order: groups row-major over the group grid, tokens row-major inside a group (border
// groups smaller), text where the token layout puts it.
std::vector<int32_t> group_major_perm(const sattn::TokenLayout& t, const int64_t group[3]) {
  std::vector<int32_t> grid_tokens(size_t(t.grid_tokens()));
  std::iota(grid_tokens.begin(), grid_tokens.end(), int32_t(t.grid_begin()));
  auto key = [&](int32_t token) {
    int64_t c[3];
    t.coords(token, c);
    int64_t k = 0;
    for (int a = 0; a < 3; ++a) k = k * ((t.grid[a] + group[a] - 1) / group[a]) + c[a] / group[a];
    for (int a = 0; a < 3; ++a) k = k * group[a] + c[a] % group[a];
    return k;
  };
  std::stable_sort(grid_tokens.begin(), grid_tokens.end(), [&](int32_t x, int32_t y) { return key(x) < key(y); });
  std::vector<int32_t> perm;
  for (int64_t i = 0; i < t.text_len; ++i) perm.push_back(int32_t(t.text_before ? i : t.grid_tokens() + i));
  perm.insert(t.text_before ? perm.end() : perm.begin(), grid_tokens.begin(), grid_tokens.end());
  return perm;
}

}  // namespace

static void case_gna2d_stride_dilation_padded_text_before(sattn::SparseKernel kernel) {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  KERNEL_OR_SKIP(ctx, kernel);
  // 23x29 grid (neither axis a tile multiple), 41 text tokens first of which 30 are real: L = 708.
  MaskRule rule = grid_rule(1, 23, 29, 41, true, 30);
  rule.method = sattn::MaskMethod::Neighborhood;
  set3(rule.window, 1, 7, 9), set3(rule.stride, 1, 2, 3), set3(rule.dilation, 1, 2, 1);
  REQUIRE(sattn::rule_error(rule) == "");
  const Problem p = make_problem(ctx, 2, rule.tokens.seq_len(), 3, 128, Views::Contiguous, 101);
  SECTION("exhaustive plan, natural order") {
    check_layout(ctx, p, sattn::plan_exhaustive(rule, kBlockSparseQTile, kBlockSparseKvTile), kernel);
  }
  SECTION("analytic plan (box-major re-layout)") {
    const BlockLayout l = sattn::plan(rule, kBlockSparseQTile, kBlockSparseKvTile);
    CHECK_FALSE(l.perm.empty());
    check_layout(ctx, p, l, kernel);
  }
}
BLOCK_SPARSE_CASE("gna2d_stride_dilation_padded_text_before", case_gna2d_stride_dilation_padded_text_before)

static void case_grat_b_group_major_text_after_f16_d64(sattn::SparseKernel kernel) {
  DITRUN_GPU_OR_SKIP(ctx, DType::F16);
  KERNEL_OR_SKIP(ctx, kernel);
  // 20x36 grid in 8x8 groups (the last group row is 4 tall), 19 text tokens after the grid: L = 739.
  MaskRule rule = grid_rule(1, 20, 36, 19, false, -1);
  rule.method = sattn::MaskMethod::Group;
  set3(rule.group, 1, 8, 8);
  rule.radius = 1;
  REQUIRE(sattn::rule_error(rule) == "");
  // Batch 2 under a layout of batch 1 (broadcast).
  const Problem p = make_problem(ctx, 2, rule.tokens.seq_len(), 2, 64, Views::Contiguous, 102);
  check_layout(ctx, p, sattn::plan_exhaustive(rule, kBlockSparseQTile, kBlockSparseKvTile,
                                              group_major_perm(rule.tokens, rule.group)), kernel);
}
BLOCK_SPARSE_CASE("grat_b_group_major_text_after_f16_d64", case_grat_b_group_major_text_after_f16_d64)

static void case_grat_x_3d_strided_views_and_attention_entry(sattn::SparseKernel kernel) {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  KERNEL_OR_SKIP(ctx, kernel);
  // 3x12x20 grid, criss-cross over 1x4x8 groups, 24 text tokens first of which 20 are real: L = 744.
  MaskRule rule = grid_rule(3, 12, 20, 24, true, 20);
  rule.method = sattn::MaskMethod::Group;
  rule.criss_cross = true;
  set3(rule.group, 1, 4, 8);
  REQUIRE(sattn::rule_error(rule) == "");
  const BlockLayout l = sattn::plan(rule, kBlockSparseQTile, kBlockSparseKvTile);
  SECTION("q, k, v slices of one fused tensor") {
    const Problem p = make_problem(ctx, 1, rule.tokens.seq_len(), 2, 128, Views::FusedQkv, 103);
    REQUIRE_FALSE(p.gpu.q.is_contiguous());
    const Tensor direct = check_layout(ctx, p, l, kernel);
    // sattn::attention plans the same layout and runs this kernel on it: the same bits.
    sattn::AttentionParams entry = p.gpu;
    entry.sparse_kernel = kernel;
    entry.tokens = rule.tokens;
    entry.method = sattn::MethodSpec{rule};
    const std::string what = sattn::describe_attention(ctx, entry);
    INFO(what);
    CHECK(what.find("block_sparse") != std::string::npos);
    CHECK(test::compare(rt::to_host(ctx, sattn::attention(ctx, entry)), direct).max_abs == 0.0);
    // A layout uploaded once and passed in: the same bits again.
    CHECK(test::compare(rt::to_host(ctx, run_block_sparse(ctx, entry, l, /*uploaded=*/true)), direct).max_abs == 0.0);
  }
  SECTION("v rows not 16-byte aligned (copied before the kernel)") {
    check_layout(ctx, make_problem(ctx, 1, rule.tokens.seq_len(), 2, 128, Views::FusedMisaligned, 104), l, kernel);
  }
}
BLOCK_SPARSE_CASE("grat_x_3d_strided_views_and_attention_entry", case_grat_x_3d_strided_views_and_attention_entry)

static void case_layouts_per_batch_and_head_with_empty_rows(sattn::SparseKernel kernel) {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  KERNEL_OR_SKIP(ctx, kernel);
  // 17x30 neighborhood 9x30 (every column): full and partial tiles, L = 510.
  MaskRule rule = grid_rule(1, 17, 30, 0, true, -1);
  rule.method = sattn::MaskMethod::Neighborhood;
  set3(rule.window, 1, 9, 30);
  REQUIRE(sattn::rule_error(rule) == "");
  const BlockLayout base = sattn::plan_exhaustive(rule, kBlockSparseQTile, kBlockSparseKvTile);
  const int64_t batch = 2, heads = 3, kv_tiles = base.num_kv_tiles();
  using Lists = std::pair<std::vector<int32_t>, std::vector<int32_t>>;  // full, partial
  auto lists = [&](int64_t qt) {
    const auto f = base.full_offsets, p = base.partial_offsets;
    return Lists{{base.full_index.begin() + f[size_t(qt)], base.full_index.begin() + f[size_t(qt) + 1]},
                 {base.partial_index.begin() + p[size_t(qt)], base.partial_index.begin() + p[size_t(qt) + 1]}};
  };
  auto merged = [](Lists x) {
    std::vector<int32_t> all = x.first;
    all.insert(all.end(), x.second.begin(), x.second.end());
    std::sort(all.begin(), all.end());
    return all;
  };
  // One variant per (batch, head), all different: exact; every visited tile partial; query tile 1 visits
  // nothing and tile 2 only its partial tiles; every key tile partial (tiles with nothing allowed
  // included); only the lowest visited tile (rows with nothing allowed in it attend nothing); exact.
  const std::vector<std::function<Lists(int64_t)>> variants = {
      [&](int64_t qt) { return lists(qt); },
      [&](int64_t qt) { return Lists{{}, merged(lists(qt))}; },
      [&](int64_t qt) { return qt == 1 ? Lists{} : qt == 2 ? Lists{{}, lists(qt).second} : lists(qt); },
      [&](int64_t) {
        std::vector<int32_t> all(static_cast<size_t>(kv_tiles));
        std::iota(all.begin(), all.end(), 0);
        return Lists{{}, all};
      },
      [&](int64_t qt) {
        const Lists x = lists(qt);
        const std::vector<int32_t> all = merged(x);
        if (all.empty()) return Lists{};
        const bool full = std::find(x.first.begin(), x.first.end(), all[0]) != x.first.end();
        return full ? Lists{{all[0]}, {}} : Lists{{}, {all[0]}};
      },
      [&](int64_t qt) { return lists(qt); },
  };
  BlockLayout l = base;
  l.batch = batch, l.heads = heads;
  l.full_offsets = {0}, l.partial_offsets = {0}, l.full_index.clear(), l.partial_index.clear();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t qt = 0; qt < l.num_q_tiles(); ++qt) {
        const Lists x = variants[size_t(b * heads + h)](qt);
        sattn::append_entry(l, x.first, x.second);
      }
  const Problem p = make_problem(ctx, batch, rule.tokens.seq_len(), heads, 64, Views::Contiguous, 105);
  std::vector<char> attends;
  layout_bias(l, batch, heads, &attends);
  CHECK(std::count(attends.begin(), attends.end(), 0) > kBlockSparseQTile);  // query tile 1 of (0, 2) and more
  check_layout(ctx, p, l, kernel);
}
BLOCK_SPARSE_CASE("layouts_per_batch_and_head_with_empty_rows", case_layouts_per_batch_and_head_with_empty_rows)

static void case_dense_all_tiles_full(sattn::SparseKernel kernel) {
  // A plain sequence of 1000 tokens (the last key tile holds 40): every tile full, no element mask but
  // the sequence end.
  MaskRule rule = grid_rule(1, 25, 40, 0, true, -1);
  const auto run = [&](const rt::Context& ctx, int64_t d, uint64_t seed) {
    const BlockLayout l = sattn::plan_exhaustive(rule, kBlockSparseQTile, kBlockSparseKvTile);
    REQUIRE(l.partial_index.empty());
    check_layout(ctx, make_problem(ctx, 1, rule.tokens.seq_len(), 4, d, Views::Contiguous, seed), l, kernel);
  };
  SECTION("bf16 D=128") {
    DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
    KERNEL_OR_SKIP(ctx, kernel);
    run(ctx, 128, 106);
  }
  SECTION("f16 D=64") {
    DITRUN_GPU_OR_SKIP(ctx, DType::F16);
    KERNEL_OR_SKIP(ctx, kernel);
    run(ctx, 64, 107);
  }
  SECTION("f16 D=128") {
    DITRUN_GPU_OR_SKIP(ctx, DType::F16);
    KERNEL_OR_SKIP(ctx, kernel);
    run(ctx, 128, 109);
  }
  SECTION("bf16 D=64") {
    DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
    KERNEL_OR_SKIP(ctx, kernel);
    run(ctx, 64, 110);
  }
}
BLOCK_SPARSE_CASE("dense_all_tiles_full", case_dense_all_tiles_full)

TEST_CASE("sparse_attention.sparse_kernel_selection", "[cuda]") {
  sattn::SparseKernel k = sattn::SparseKernel::Auto;
  for (sattn::SparseKernel want :
       {sattn::SparseKernel::Auto, sattn::SparseKernel::Sm80, sattn::SparseKernel::Sm90, sattn::SparseKernel::Sm90Ws}) {
    REQUIRE(sattn::parse_sparse_kernel(sattn::sparse_kernel_name(want), &k));
    CHECK(k == want);
  }
  CHECK(std::string(sattn::sparse_kernel_name(sattn::SparseKernel::Sm90)) == "sm90");
  CHECK(std::string(sattn::sparse_kernel_name(sattn::SparseKernel::Sm90Ws)) == "sm90ws");
  CHECK_FALSE(sattn::parse_sparse_kernel("wgmma", &k));
  CHECK(k == sattn::SparseKernel::Sm90Ws);  // untouched (the loop's last)

  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
#if DITRUN_WITH_CUDA
  namespace kc = sattn::kernels::cuda;
  const BlockLayout l = sattn::plan_exhaustive(grid_rule(1, 8, 16, 0, true, -1), kBlockSparseQTile, kBlockSparseKvTile);
  const Problem p = make_problem(ctx, 1, l.seq_len, 2, 64, Views::Contiguous, 111);
  const std::string device_why = kc::block_sparse_sm90_device_refusal(ctx);
  const bool hopper = device_why.empty();
  auto select = [&](sattn::SparseKernel kernel, std::string* why) {
    sattn::AttentionParams q = p.gpu;
    q.sparse_kernel = kernel;
    return kc::select_block_sparse_kernel(ctx, q, l, why);
  };
  std::string why;
  CHECK(select(sattn::SparseKernel::Sm80, &why) == sattn::SparseKernel::Sm80);
  const auto auto_choice = select(sattn::SparseKernel::Auto, &why);
  CHECK(auto_choice == (hopper ? sattn::SparseKernel::Sm90Ws : sattn::SparseKernel::Sm80));
  for (const sattn::SparseKernel hopper_kernel : {sattn::SparseKernel::Sm90, sattn::SparseKernel::Sm90Ws}) {
    INFO(sattn::sparse_kernel_name(hopper_kernel));
    const auto chosen = select(hopper_kernel, &why);
    if (hopper) {
      CHECK(chosen == hopper_kernel);
      CHECK(why.empty());
    } else {
      CHECK_FALSE(chosen.has_value());
      CHECK(why == device_why);
      CHECK((why.find("compute capability 9.0") != std::string::npos || why.find("sm_90a") != std::string::npos));
    }
  }
  // A call neither kernel takes: block_sparse_refusal's reason, whatever the choice.
  sattn::AttentionParams causal = p.gpu;
  causal.mask = sattn::MaskKind::Causal;
  causal.sparse_kernel = sattn::SparseKernel::Sm90;
  CHECK_FALSE(kc::select_block_sparse_kernel(ctx, causal, l, &why).has_value());
  CHECK(why.find("causal") != std::string::npos);
  CHECK(kc::block_sparse_sm90_refusal(ctx, causal, l).find("causal") != std::string::npos);
#else
  (void)ctx;
#endif
}

TEST_CASE("sparse_attention.block_sparse_refusals", "[cuda]") {
  const MaskRule rule = grid_rule(1, 8, 16, 0, true, -1);
  const BlockLayout l = sattn::plan_exhaustive(rule, kBlockSparseQTile, kBlockSparseKvTile);
  rt::TorchGenerator gen(108);
  sattn::AttentionParams cpu;
  cpu.q = gen.randn({1, 128, 2, 64}), cpu.k = gen.randn({1, 128, 2, 64}), cpu.v = gen.randn({1, 128, 2, 64});
  CHECK(sattn::kernels::block_sparse_refusal(cpu, l).find("CUDA tensors") != std::string::npos);

  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  sattn::AttentionParams p;
  p.q = rt::to_ctx(ctx, cpu.q), p.k = rt::to_ctx(ctx, cpu.k), p.v = rt::to_ctx(ctx, cpu.v);
  CHECK(sattn::kernels::block_sparse_refusal(p, l) == "");
  const BlockLayout small = sattn::plan_exhaustive(rule, 64, 64);
  CHECK(sattn::kernels::block_sparse_refusal(p, small).find("q_tile=128 kv_tile=64") != std::string::npos);
  sattn::AttentionParams wide = p;
  for (Tensor* t : {&wide.q, &wide.k, &wide.v}) *t = rt::to_ctx(ctx, gen.randn({1, 128, 2, 96}));
  CHECK(sattn::kernels::block_sparse_refusal(wide, l).find("D=96") != std::string::npos);
  sattn::AttentionParams f32 = p;
  for (Tensor* t : {&f32.q, &f32.k, &f32.v}) *t = rt::to_device(ctx, *t, ctx.device(), DType::F32);
  CHECK(sattn::kernels::block_sparse_refusal(f32, l).find("bf16 or f16") != std::string::npos);
  sattn::AttentionParams causal = p;
  causal.mask = sattn::MaskKind::Causal;
  CHECK(sattn::kernels::block_sparse_refusal(causal, l).find("causal") != std::string::npos);
  BlockLayout three_heads = l;
  three_heads.heads = 3;
  CHECK(sattn::kernels::block_sparse_refusal(p, three_heads).find("heads 3") != std::string::npos);
}

namespace {

// Text in place, the grid in the axis order `order` (slowest axis first, e.g. {2, 1, 0} = W, H, T).
std::vector<int32_t> axis_order_perm(const sattn::TokenLayout& t, const int (&order)[3]) {
  std::vector<int32_t> perm(size_t(t.seq_len()));
  std::iota(perm.begin(), perm.end(), 0);
  const int64_t g0 = t.grid_begin();
  int64_t pos = g0;
  int64_t c[3];
  for (c[order[0]] = 0; c[order[0]] < t.grid[order[0]]; ++c[order[0]])
    for (c[order[1]] = 0; c[order[1]] < t.grid[order[1]]; ++c[order[1]])
      for (c[order[2]] = 0; c[order[2]] < t.grid[order[2]]; ++c[order[2]])
        perm[size_t(pos++)] = int32_t(g0 + (c[0] * t.grid[1] + c[1]) * t.grid[2] + c[2]);
  return perm;
}

// Entry e's list out of a layout's CSR arrays.
std::vector<int32_t> entry_list(const std::vector<int32_t>& offsets, const std::vector<int32_t>& index, int64_t e) {
  return {index.begin() + offsets[size_t(e)], index.begin() + offsets[size_t(e) + 1]};
}

// Heads in different layout orders (PARO's per-head axis orders): 3 perm sets (T,H,W natural; W,H,T;
// H,T,W), head_perm {1, 2, 0, 1} over 4 heads; each head's lists are the exhaustive plan of a GNA rule in
// its order (full and partial tiles, so the partial-tile masks must follow the head's order too), with
// tiles dropped from some query tiles so the lists differ per head beyond the order. Text of 37 tokens
// (5 padded) after a 3x11x13 grid: no tile boundary meets the grid's.
BlockLayout per_head_perm_layout() {
  MaskRule rule = grid_rule(3, 11, 13, 37, false, 32);
  rule.method = sattn::MaskMethod::Neighborhood;
  set3(rule.window, 3, 5, 7);
  REQUIRE(sattn::rule_error(rule) == "");
  const int orders[3][3] = {{0, 1, 2}, {2, 1, 0}, {1, 0, 2}};
  std::vector<std::vector<int32_t>> sets;
  for (const auto& o : orders) sets.push_back(axis_order_perm(rule.tokens, o));
  BlockLayout l;
  l.q_tile = kBlockSparseQTile, l.kv_tile = kBlockSparseKvTile, l.seq_len = rule.tokens.seq_len(), l.rule = rule;
  l.heads = 4;
  l.head_perm = {1, 2, 0, 1};
  for (const auto& s : sets) l.perm.insert(l.perm.end(), s.begin(), s.end());
  l.full_offsets = l.partial_offsets = {0};
  for (int64_t h = 0; h < l.heads; ++h) {
    const BlockLayout one = sattn::plan_exhaustive(rule, l.q_tile, l.kv_tile, sets[size_t(l.head_perm[size_t(h)])]);
    for (int64_t qt = 0; qt < one.num_q_tiles(); ++qt) {
      std::vector<int32_t> full = entry_list(one.full_offsets, one.full_index, qt);
      const std::vector<int32_t> partial = entry_list(one.partial_offsets, one.partial_index, qt);
      if (h == 3 && qt % 2 == 1 && !full.empty()) full.erase(full.begin());  // head 3: same order as head 0, fewer tiles
      sattn::append_entry(l, full, partial);
    }
  }
  REQUIRE(sattn::validate(l) == "");
  REQUIRE(l.partial_index.size() > 0);
  return l;
}

}  // namespace

static void case_per_head_perms_bf16_d128_and_f16_d64(sattn::SparseKernel kernel) {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  KERNEL_OR_SKIP(ctx, kernel);
  const BlockLayout l = per_head_perm_layout();
  // The CPU block-layout reference with per-head perms equals the layout's dense bias (the same oracle).
  const Problem p = make_problem(ctx, 2, l.seq_len, 4, 128, Views::FusedQkv, 501);
  const Tensor got = check_layout(ctx, p, l, kernel);
  {
    std::vector<char> attends;
    sattn::AttentionParams cpu = p.cpu;
    cpu.bias = layout_bias(l, 2, 4, &attends);
    Tensor want = sattn::attention(test::cpu_context(), cpu).contiguous().clone();
    Tensor ref = sattn::reference::block_layout_attention_cpu(test::cpu_context(), p.cpu, l).contiguous().clone();
    zero_empty_rows(want, attends);
    zero_empty_rows(ref, attends);
    CHECK(test::compare(ref, want).rel_l2 <= 1e-5);  // f32 on both sides
  }
  // The upload cached beside the layout gives the same output.
  sattn::AttentionParams gpu = p.gpu;
  gpu.sparse_kernel = kernel;
  const Tensor again = rt::to_host(ctx, run_block_sparse(ctx, gpu, l, true));
  CHECK(test::compare(again, got).rel_l2 == 0.0);

  // f16, D = 64, batch 1.
  check_layout(ctx, make_f16_problem(ctx, 1, l.seq_len, 4, 64, 502), l, kernel);
}
BLOCK_SPARSE_CASE("per_head_perms_bf16_d128_and_f16_d64", case_per_head_perms_bf16_d128_and_f16_d64)

namespace {

// GNA whose stride holds a query tile (upload_layout packs such entries' partial tiles for the sm90ws
// kernel, cuda/packed_keys.h): grid 1x28x48, window 1x20x24, stride 1x16x16, 41 text tokens first of which
// 30 are real (the text is last in layout order: the ragged last key tile, partial for the grid's queries).
// Two heads planned with different boxes, 1x8x16 and 1x16x8, so two perm sets; both boxes sit inside a
// stride group, except the border boxes of the 28 rows, whose query tiles mix two windows and stay unpacked.
BlockLayout packed_gna_layout() {
  MaskRule rule = grid_rule(1, 28, 48, 41, true, 30);
  rule.method = sattn::MaskMethod::Neighborhood;
  set3(rule.window, 1, 20, 24), set3(rule.stride, 1, 16, 16);
  REQUIRE(sattn::rule_error(rule) == "");
  const int64_t boxes[2][3] = {{1, 8, 16}, {1, 16, 8}};
  BlockLayout l;
  l.q_tile = kBlockSparseQTile, l.kv_tile = kBlockSparseKvTile, l.seq_len = rule.tokens.seq_len(), l.rule = rule;
  l.heads = 2;
  l.head_perm = {0, 1};
  l.full_offsets = l.partial_offsets = {0};
  for (const auto& box : boxes) {
    const BlockLayout one = sattn::plan_gna(rule, l.q_tile, l.kv_tile, box);
    REQUIRE(one.perm.size() == size_t(l.seq_len));
    l.perm.insert(l.perm.end(), one.perm.begin(), one.perm.end());
    for (int64_t qt = 0; qt < one.num_q_tiles(); ++qt)
      sattn::append_entry(l, entry_list(one.full_offsets, one.full_index, qt),
                          entry_list(one.partial_offsets, one.partial_index, qt));
  }
  REQUIRE(sattn::validate(l) == "");
  return l;
}

}  // namespace

static void case_gna_packed_keys(sattn::SparseKernel kernel) {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  KERNEL_OR_SKIP(ctx, kernel);
  const BlockLayout l = packed_gna_layout();
#if DITRUN_WITH_CUDA
  {  // The layout exercises both kinds of entry: packed (some with a ragged last slot) and unpacked.
    const sattn::kernels::cuda::UploadedLayout u = sattn::kernels::cuda::upload_layout(ctx, l);
    REQUIRE(u.packed_entry != nullptr);
    const Tensor host = rt::to_host(ctx, u.packed_entry_buf);
    std::vector<int32_t> entry(size_t(2 * l.entries()));
    std::memcpy(entry.data(), host.raw_data(), entry.size() * sizeof(int32_t));
    int64_t packed = 0, ragged = 0, kept = 0;
    for (int64_t e = 0; e < l.entries(); ++e) {
      const bool has_partial = l.partial_offsets[size_t(e) + 1] > l.partial_offsets[size_t(e)];
      if (entry[size_t(2 * e + 1)] >= 0) ++packed, ragged += entry[size_t(2 * e + 1)] % kBlockSparseKvTile != 0;
      else kept += has_partial;
    }
    std::printf("  packed keys: %lld entries packed (%lld with a ragged last slot), %lld keep partial tiles, of %lld\n",
                (long long)packed, (long long)ragged, (long long)kept, (long long)l.entries());
    CHECK(packed > 0);
    CHECK(ragged > 0);
    CHECK(kept > 0);
  }
#endif
  const Problem p = make_problem(ctx, 2, l.seq_len, 2, 128, Views::Contiguous, 601);
  check_layout(ctx, p, l, kernel);
  check_layout(ctx, make_f16_problem(ctx, 1, l.seq_len, 2, 64, 602), l, kernel);
}
BLOCK_SPARSE_CASE("gna_packed_keys", case_gna_packed_keys)

namespace {

// A planned layout whose tiles sm90ws copies as TMA boxes (tile_boxes.h), checked on the host: every tile a
// run or a grid box, and no packed entry (those gather their keys).
BlockLayout tma_layout(const rt::Context& ctx, int64_t t, int64_t h, int64_t w, int64_t text, bool text_before,
                       const char* method, bool grid_boxes) {
  const MaskRule rule = grid_rule(t, h, w, text, text_before, -1);
  const auto spec = sattn::parse_method(method);
  REQUIRE(spec);
  const BlockLayout l = sattn::plan(spec->for_tokens(rule.tokens), kBlockSparseQTile, kBlockSparseKvTile);
  const sattn::kernels::TileBoxes boxes = sattn::kernels::tile_boxes(l);
  INFO(method << ": " << boxes.why);
  REQUIRE(boxes.usable);
  CHECK((boxes.q_box[0] != 0 && boxes.kv_box[0] != 0) == grid_boxes);
#if DITRUN_WITH_CUDA
  const sattn::kernels::cuda::UploadedLayout u = sattn::kernels::cuda::upload_layout(ctx, l);
  CHECK(u.boxes_usable);
  CHECK(u.packed_entry == nullptr);
#else
  (void)ctx;
#endif
  return l;
}

}  // namespace

// Layouts the sm90ws kernel loads by TMA (the other kernels gather them as any layout): the identity order
// with a ragged end (runs, read past the sequence as zeros), Flux's image boxes with text runs, over batch 2
// and the fused-qkv views' strides, and a video's boxes across frames (GRAT over 2x8x8 groups) with short
// text runs after the grid.
static void case_tma_boxes(sattn::SparseKernel kernel) {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  KERNEL_OR_SKIP(ctx, kernel);
  const BlockLayout dense = tma_layout(ctx, 1, 23, 29, 41, true, "dense", false);  // L = 708
  check_layout(ctx, make_problem(ctx, 2, dense.seq_len, 3, 128, Views::Contiguous, 701), dense, kernel);
  const BlockLayout image = tma_layout(ctx, 1, 32, 64, 64, true, "grat:variant=B,group=1x8x16", true);
  check_layout(ctx, make_problem(ctx, 2, image.seq_len, 3, 128, Views::Contiguous, 702), image, kernel);
  check_layout(ctx, make_problem(ctx, 2, image.seq_len, 2, 128, Views::FusedQkv, 703), image, kernel);
  check_layout(ctx, make_f16_problem(ctx, 1, image.seq_len, 2, 64, 704), image, kernel);
  const BlockLayout video = tma_layout(ctx, 2, 32, 32, 40, false, "grat:variant=B,group=2x8x8", true);
  check_layout(ctx, make_problem(ctx, 1, video.seq_len, 3, 128, Views::Contiguous, 705), video, kernel);
  check_layout(ctx, make_f16_problem(ctx, 1, video.seq_len, 2, 64, 706), video, kernel);
  // Batch 2 of a video: the boxes' 5-D map has no dimension left for the batch, so sm90ws gathers.
  check_layout(ctx, make_problem(ctx, 2, video.seq_len, 2, 128, Views::Contiguous, 707), video, kernel);
}
BLOCK_SPARSE_CASE("tma_boxes", case_tma_boxes)

TEST_CASE("sparse_attention.per_head_perms_quantized_kernel", "[cuda]") {
  DITRUN_GPU_OR_SKIP(ctx, DType::BF16);
  // The quantized kernel with per-head perms against its CPU reference on the same values: relative L2
  // <= 5e-3 (the bound of test_block_sparse_quant.cpp, where the reasons are written out), NaN-free.
  const BlockLayout l = per_head_perm_layout();
  const Problem p = make_problem(ctx, 2, l.seq_len, 4, 64, Views::Contiguous, 503);
#if DITRUN_WITH_CUDA
  for (sattn::AttnQuant quant : {sattn::AttnQuant::Int8, sattn::AttnQuant::Int8Fp8Pv}) {
    REQUIRE(sattn::kernels::block_sparse_quant_refusal(p.gpu, l, quant) == "");
    const sattn::kernels::cuda::UploadedLayout u = sattn::kernels::cuda::upload_layout(ctx, l);
    const Tensor got = rt::to_host(ctx, sattn::kernels::cuda::block_sparse_attention_quant(ctx, p.gpu, l, quant, &u));
    REQUIRE(all_finite(got));
    // The reference takes the softmax step and the running max of the kernel that ran (quant_tiles_per_step,
    // quant_max_headroom, quant_sum_quantized_p).
    const auto ran = sattn::kernels::cuda::select_block_sparse_quant_kernel(ctx, sattn::SparseKernel::Auto, quant, nullptr);
    REQUIRE(ran.has_value());
    sattn::reference::QuantReferenceOptions options;
    options.tiles_per_step = sattn::kernels::quant_tiles_per_step(*ran, p.cpu.q.size(3));
    options.max_headroom_log2 = sattn::kernels::quant_max_headroom(*ran);
    options.sum_quantized_p = sattn::kernels::quant_sum_quantized_p(*ran);
    options.p_codes = sattn::kernels::quant_p_codes(*ran);
    const Tensor want = sattn::reference::quant_attention_cpu(test::cpu_context(), p.cpu, l, quant, options);
    const test::Diff d = test::compare(got, want);
    std::printf("  per-head perms, %s (%s kernel): %s\n", sattn::attn_quant_name(quant), sattn::sparse_kernel_name(*ran),
                d.str().c_str());
    CHECK(d.rel_l2 <= 5e-3);
  }
#else
  FAIL("block_sparse_attention_quant needs a CUDA build");
#endif
}
