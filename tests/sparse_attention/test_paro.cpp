// PARO plans: file round trip, every load error, the planner's layouts (valid, per-head orders, text dense,
// masks as written), the bucket rule and the calibration statistics (block sums of a brute-force softmax).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <unistd.h>

#include "harness/compare.h"
#include "harness/gpu.h"
#include "rng.h"
#include "sparse_attention/methods/method_spec.h"
#include "sparse_attention/methods/paro.h"
#include "sparse_attention/methods/paro_calibrate.h"
#include "sparse_attention/methods/plan.h"

#include <catch2/catch.hpp>

namespace fs = std::filesystem;
using sattn::ParoPlan;

namespace {

// 16x16 grid after 24 text tokens at tiles 128x64 (the embedded model at 256²): image q tiles 1..2, kv 1..4.
ParoPlan small_plan(uint32_t seed) {
  ParoPlan p;
  p.layers = 3, p.heads = 2, p.head_dim = 64;
  p.tokens.grid[1] = p.tokens.grid[2] = 16;
  p.tokens.text_len = 24;
  p.q_tile = 128, p.kv_tile = 64, p.buckets = 4, p.density = 0.3, p.steps = 4, p.prompts = 2;
  std::mt19937 rng(seed);
  for (int64_t r = 0; r < p.records(); ++r) {
    p.order.push_back(uint8_t(rng() % 2));
    for (int64_t i = 0; i < p.mask_rows(); ++i) {
      const int64_t must = int64_t(rng() % uint32_t(p.mask_cols()));
      for (int64_t j = 0; j < p.mask_cols(); ++j) p.keep.push_back(j == must || rng() % 3 == 0 ? 1 : 0);
    }
  }
  return p;
}

std::string temp_path(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("ditrun_paro_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_all(const std::string& path, const std::string& s) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << s;
}

}  // namespace

TEST_CASE("paro.plan file round trip and overwrite refusal", "[paro]") {
  const ParoPlan p = small_plan(1);
  REQUIRE(p.mask_rows() == 2);
  REQUIRE(p.mask_cols() == 4);
  REQUIRE(sattn::validate(p) == "");
  const std::string path = temp_path("round.paro");
  fs::remove(path);
  REQUIRE(sattn::write_paro_plan(p, path, false));
  auto back = sattn::read_paro_plan(path);
  INFO((back ? "" : back.status().message()));
  REQUIRE(back);
  CHECK(back->order == p.order);
  CHECK(back->keep == p.keep);
  CHECK(back->layers == 3);
  CHECK(back->heads == 2);
  CHECK(back->head_dim == 64);
  CHECK(back->buckets == 4);
  CHECK(back->tokens.text_len == 24);
  CHECK(back->density == 0.3);
  auto again = sattn::write_paro_plan(p, path, false);
  REQUIRE(!again);
  CHECK_THAT(again.message(), Catch::Contains("--overwrite"));
  CHECK(sattn::write_paro_plan(p, path, true));
  CHECK(!fs::exists(path + ".tmp." + std::to_string(::getpid())));
}

TEST_CASE("paro.every load error names the problem", "[paro]") {
  const std::string path = temp_path("bad.paro");
  fs::remove(path);
  REQUIRE(sattn::write_paro_plan(small_plan(2), path, true));
  const std::string good = read_all(path);
  const size_t nl1 = good.find('\n'), nl2 = good.find('\n', nl1 + 1);
  const std::string header = good.substr(nl1 + 1, nl2 - nl1 - 1), payload = good.substr(nl2 + 1);
  auto load_error = [&](const std::string& bytes) {
    write_all(path, bytes);
    auto r = sattn::read_paro_plan(path);
    return r ? std::string("loaded") : r.status().message();
  };
  auto with_header = [&](const std::string& from, const std::string& to) {
    std::string h = header;
    const size_t at = h.find(from);
    REQUIRE(at != std::string::npos);
    h.replace(at, from.size(), to);
    return "ditrun-paro 1\n" + h + "\n" + payload;
  };
  CHECK_THAT(sattn::read_paro_plan(temp_path("missing.paro")).status().message(), Catch::Contains("cannot open"));
  CHECK_THAT(load_error("PNG\n"), Catch::Contains("not a ditrun PARO plan"));
  CHECK_THAT(load_error("ditrun-paro 7\n" + header + "\n" + payload), Catch::Contains("format version 7"));
  CHECK_THAT(load_error("ditrun-paro 1\n{oops\n" + payload), Catch::Contains("not JSON"));
  CHECK_THAT(load_error(with_header("\"heads\":2", "\"hedz\":2")), Catch::Contains("heads"));
  CHECK_THAT(load_error(with_header("\"grid\":[1,16,16]", "\"grid\":[16,16]")), Catch::Contains("grid has 2 axes"));
  CHECK_THAT(load_error(with_header("\"orders\":[\"HW\",\"WH\"]", "\"orders\":[\"WH\",\"HW\"]")), Catch::Contains("orders"));
  CHECK_THAT(load_error(with_header("\"mask_cols\":4", "\"mask_cols\":5")), Catch::Contains("masks of 2x5"));
  CHECK_THAT(load_error(with_header("\"bucket_rule\":\"", "\"bucket_rule\":\"x")), Catch::Contains("bucket_rule"));
  CHECK_THAT(load_error("ditrun-paro 1\n" + header + "\n" + payload.substr(0, payload.size() - 1)), Catch::Contains("truncated"));
  std::string flipped = payload;
  flipped[1] = char(flipped[1] ^ 0x10);
  CHECK_THAT(load_error("ditrun-paro 1\n" + header + "\n" + flipped), Catch::Contains("checksum"));
  // Semantic errors come from validate() (checked on write too).
  ParoPlan p = small_plan(3);
  p.order[5] = 2;
  CHECK_THAT(sattn::validate(p), Catch::Contains("axis order 2"));
  p = small_plan(3);
  std::fill(p.keep.begin(), p.keep.begin() + p.mask_cols(), 0);
  CHECK_THAT(sattn::validate(p), Catch::Contains("keeps no key tile"));
  CHECK_THAT(sattn::write_paro_plan(p, path, true).message(), Catch::Contains("keeps no key tile"));
  p = small_plan(3);
  p.keep.pop_back();
  CHECK_THAT(sattn::validate(p), Catch::Contains("mask entries"));
  // Spec parsing: load errors surface as method errors.
  auto spec = sattn::parse_method("paro:plan=" + temp_path("missing.paro"));
  REQUIRE(!spec);
  CHECK_THAT(spec.status().message(), Catch::Contains("ditrun calibrate"));
  CHECK_THAT(sattn::parse_method("paro:plan=x,bad=1").status().message(), Catch::Contains("unknown paro key"));
  CHECK_THAT(sattn::parse_method("paro").status().message(), Catch::Contains("plan=FILE"));
}

TEST_CASE("paro.fit errors name the calibration size", "[paro]") {
  const ParoPlan p = small_plan(4);
  sattn::TokenLayout t = p.tokens;
  CHECK(sattn::paro_tokens_error(p, t) == "");
  t.grid[1] = t.grid[2] = 32;
  CHECK(sattn::paro_tokens_error(p, t) == "plan calibrated for a 16x16 grid, this run has 32x32: run ditrun calibrate at this size");
  t = p.tokens;
  t.text_len = 512;
  CHECK_THAT(sattn::paro_tokens_error(p, t), Catch::Contains("24 text tokens"));
  CHECK_THAT(sattn::paro_model_error(p, 3, 4, 64), Catch::Contains("2 heads of 64"));
  CHECK(sattn::paro_model_error(p, 3, 2, 64) == "");
}

TEST_CASE("paro.bucket rule", "[paro]") {
  CHECK(sattn::paro_bucket(0, 50, 10) == 0);   // int(1/50·10) = 0
  CHECK(sattn::paro_bucket(4, 50, 10) == 1);   // int(5/50·10) = 1
  CHECK(sattn::paro_bucket(49, 50, 10) == 9);  // int(10) clamped to 9
  CHECK(sattn::paro_bucket(0, 4, 10) == 2);
  CHECK(sattn::paro_bucket(3, 4, 10) == 9);
  CHECK(sattn::paro_bucket(-1, 4, 10) == 0);
}

TEST_CASE("paro.planner layouts follow the plan", "[paro]") {
  const ParoPlan p = small_plan(5);
  sattn::MaskRule rule;
  rule.tokens = p.tokens;
  for (int b = 0; b < p.buckets; ++b)
    for (int64_t layer = 0; layer < p.layers; ++layer) {
      const sattn::BlockLayout l = sattn::plan_paro(p, b, layer, rule);
      REQUIRE(sattn::validate(l) == "");
      REQUIRE(l.heads == 2);
      REQUIRE(l.perm_sets() == 2);
      for (int64_t h = 0; h < 2; ++h) {
        const int64_t r = p.record(b, layer, h);
        CHECK(l.head_perm[size_t(h)] == p.order[size_t(r)]);
        for (int64_t qt = 0; qt < l.num_q_tiles(); ++qt) {
          const int64_t e = l.entry(0, h, qt);
          std::vector<int32_t> tiles(l.full_index.begin() + l.full_offsets[size_t(e)], l.full_index.begin() + l.full_offsets[size_t(e) + 1]);
          CHECK(l.partial_offsets[size_t(e)] == l.partial_offsets[size_t(e) + 1]);  // no padded text
          std::vector<int32_t> want;
          for (int32_t kt = 0; kt < int32_t(l.num_kv_tiles()); ++kt) {
            const bool image = qt >= 1 && qt <= 2 && kt >= 1 && kt <= 4;  // q tile 0 and kv tile 0 hold text
            if (!image || p.mask(r)[(qt - 1) * 4 + (kt - 1)]) want.push_back(kt);
          }
          CHECK(tiles == want);
        }
      }
    }
  // Padded text keys make their tiles partial (masked by the dense rule).
  rule.tokens.text_valid = 10;
  const sattn::BlockLayout padded = sattn::plan_paro(p, 0, 0, rule);
  REQUIRE(sattn::validate(padded) == "");
  CHECK(padded.partial_index.size() == size_t(2 * padded.num_q_tiles()));
}

TEST_CASE("paro.block sums equal a brute-force softmax", "[paro]") {
  sattn::TokenLayout t;
  t.grid[0] = 2, t.grid[1] = 3, t.grid[2] = 5;  // video: six orders
  t.text_len = 7;
  t.text_before = false;
  const int64_t qt = 8, kt = 4, L = t.seq_len(), H = 2, D = 6;
  rt::TorchGenerator g(9);
  const rt::Tensor q = g.randn({2, L, H, D}), k = g.randn({2, L, H, D});
  std::vector<double> acc;
  sattn::paro_block_sums(test::cpu_context(), q, k, 0.5f, t, qt, kt, acc);
  const auto orders = sattn::axis_orders(t.grid);
  REQUIRE(orders.size() == 6);
  const sattn::TileRange qr = sattn::image_tiles(t, qt), kr = sattn::image_tiles(t, kt);
  std::vector<double> want(acc.size(), 0.0);
  for (size_t o = 0; o < orders.size(); ++o) {
    const std::vector<int32_t> perm = sattn::axis_order_perm(t, orders[o]);
    std::vector<int64_t> pos(static_cast<size_t>(L));
    for (int64_t p = 0; p < L; ++p) pos[size_t(perm[size_t(p)])] = p;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < L; ++i) {
          if (!t.is_grid(i)) continue;
          std::vector<double> s(static_cast<size_t>(L));
          double mx = -1e30, sum = 0;
          for (int64_t j = 0; j < L; ++j) {
            double dot = 0;
            for (int64_t c = 0; c < D; ++c) dot += double(q.at({b, i, h, c})) * double(k.at({b, j, h, c}));
            s[size_t(j)] = 0.5 * dot;
            mx = std::max(mx, s[size_t(j)]);
          }
          for (double& x : s) sum += (x = std::exp(x - mx));
          const int64_t r = pos[size_t(i)] / qt - qr.begin;
          for (int64_t j = 0; j < L; ++j) {
            const int64_t c = pos[size_t(j)] / kt - kr.begin;
            if (!t.is_grid(j) || r < 0 || r >= qr.size() || c < 0 || c >= kr.size()) continue;
            want[size_t(((int64_t(o) * H + h) * qr.size() + r) * kr.size() + c)] += s[size_t(j)] / sum;
          }
        }
  }
  for (size_t i = 0; i < acc.size(); ++i) REQUIRE(acc[i] == Approx(want[i]).margin(1e-5));
}

TEST_CASE("paro.block sums as matrix products equal the loop reference", "[paro]") {
  // The GPU's form (Aᵀ · P · B per order) run on the CPU backend: an image (two orders) and a video (six
  // orders), each with text before and after, tiles that straddle the text.
  for (const bool video : {false, true})
  for (const bool text_before : {false, true}) {
    sattn::TokenLayout t;
    t.grid[0] = video ? 2 : 1, t.grid[1] = 6, t.grid[2] = video ? 5 : 7;
    t.text_len = 9;
    t.text_before = text_before;
    const int64_t L = t.seq_len(), H = 3, D = 8;
    rt::TorchGenerator g(21);
    const rt::Tensor q = g.randn({2, L, H, D}), k = g.randn({2, L, H, D});
    std::vector<double> loop, products, chunked;
    sattn::paro_block_sums(test::cpu_context(), q, k, 0.4f, t, 16, 8, loop);
    sattn::paro_block_sums_matmul(test::cpu_context(), q, k, 0.4f, t, 16, 8, products);
    sattn::paro_block_sums_matmul(test::cpu_context(), q, k, 0.4f, t, 16, 8, chunked, 5);  // chunks across tiles
    REQUIRE(products.size() == loop.size());
    REQUIRE(chunked.size() == loop.size());
    double total = 0;
    for (size_t i = 0; i < loop.size(); ++i) {
      REQUIRE(products[i] == Approx(loop[i]).margin(1e-5));
      REQUIRE(chunked[i] == Approx(loop[i]).margin(1e-5));
      total += loop[i];
    }
    CHECK(total > 1.0);  // the blocks hold real mass, not zeros on both sides
  }
}

TEST_CASE("paro.keep: per row count, diagonal always kept", "[paro]") {
  sattn::TokenLayout t;
  t.grid[1] = t.grid[2] = 16;  // 256 image tokens, no text: 2 q tiles x 4 kv tiles
  std::vector<double> sums = {9, 8, 1, 0,   // row 0: diagonal tiles 0, 1
                              0, 0, 0, 7};  // row 1: diagonal tiles 2, 3
  CHECK(sattn::paro_keep(sums, 2, 4, 0.3, t, 128, 64) == std::vector<uint8_t>{1, 0, 0, 0, 0, 0, 0, 1});
  sums = {0, 0, 5, 0, 9, 0, 0, 0};  // row 0 heaviest off-diagonal: diagonal kept first, then the heaviest
  CHECK(sattn::paro_keep(sums, 2, 4, 0.5, t, 128, 64) == std::vector<uint8_t>{1, 0, 1, 0, 1, 0, 1, 0});
}
