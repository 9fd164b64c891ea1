// The quantized-attention CPU reference (reference/quant_cpu.h, numerics in quant.h): without quantization
// it equals the f32 layout reference; with operands that every scale represents exactly (integers whose
// block maxima are the quantized maxima, so every scale is 1) it equals it too (P kept in f32); on random
// q/k/v its error against the f32 layout reference is measured and bounded; K smoothing is exact and helps
// INT8 when k has a common offset. Tolerance for "equal": relative L2 <= 1e-5 (f32 sums in another order).
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "harness/compare.h"
#include "harness/gpu.h"
#include "rng.h"
#include "sparse_attention/attention.h"
#include "sparse_attention/methods/plan.h"
#include "sparse_attention/quant.h"
#include "sparse_attention/reference/quant_cpu.h"
#include "sparse_attention/reference/sparse_cpu.h"

#include <catch2/catch.hpp>

using sattn::AttentionParams;
using sattn::AttnQuant;
using sattn::BlockLayout;
using sattn::MaskRule;

namespace {

constexpr double kTol = 1e-5;

const rt::Context& ctx() { return test::cpu_context(); }

// GNA over a grid with text before it, some of it padding: an analytic plan with a perm, full and partial tiles.
BlockLayout gna_layout(int64_t hh, int64_t w, int64_t text, int64_t text_valid) {
  MaskRule r;
  r.tokens.grid[0] = 1, r.tokens.grid[1] = hh, r.tokens.grid[2] = w;
  r.tokens.text_len = text, r.tokens.text_valid = text_valid;
  r.method = sattn::MaskMethod::Neighborhood;
  r.window[0] = 1, r.window[1] = 7, r.window[2] = 9;
  r.stride[0] = 1, r.stride[1] = 2, r.stride[2] = 3;
  REQUIRE(sattn::rule_error(r) == "");
  return sattn::plan(r, 128, 64);
}

// Every key tile of a plain sequence (all tiles full; the last one ragged unless len % 64 == 0).
BlockLayout dense_layout(int64_t len) {
  MaskRule r;
  r.tokens.grid[0] = 1, r.tokens.grid[1] = 1, r.tokens.grid[2] = len;
  return sattn::plan(r, 128, 64);
}

AttentionParams random_qkv(int64_t b, int64_t len, int64_t h, int64_t d, uint64_t seed) {
  rt::TorchGenerator g(seed);
  AttentionParams p;
  p.q = g.randn({b, len, h, d});
  p.k = g.randn({b, len, 2 * h, d}).slice(2, 0, h);  // a strided view
  p.v = g.randn({b, len, h, d});
  return p;
}

double rel_l2(const rt::Tensor& got, const rt::Tensor& want) {
  const test::Diff diff = test::compare(got, want);
  INFO(diff.str());
  REQUIRE(!diff.nan_mismatch);
  return diff.rel_l2;
}

// Values whose quantization is exact: integers in [-qmax, qmax] with channel 0 of every token at ±qmax, so
// every block's max is qmax and its scale 1. k: token 2i+1 is the negation of token 2i, so the mean over
// the (even) sequence is exactly 0 and smoothing changes nothing. v: e4m3 values (FP8 P·V) or integers
// (INT8), token 0 at the maximum in every channel, so every channel scale is 1.
AttentionParams representable_qkv(int64_t len, int64_t h, int64_t d, AttnQuant quant, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  const int qmax = int(sattn::quant_qk_max(quant));
  std::uniform_int_distribution<int> qk(-qmax, qmax), byte(0, 0x7e);
  std::vector<float> q(size_t(len * h * d)), k(q.size()), v(q.size());
  for (int64_t t = 0; t < len; ++t)
    for (int64_t i = 0; i < h * d; ++i) {
      const size_t at = size_t(t * h * d + i);
      q[at] = i % d == 0 ? float(qmax) : float(qk(rng));
      k[at] = t % 2 == 1 ? -k[at - size_t(h * d)] : i % d == 0 ? float(qmax) : float(qk(rng));
      if (sattn::quant_pv_fp8(quant))
        v[at] = t == 0 ? 448.f : rt::f8e4m3_to_f32(uint8_t(byte(rng) | (qk(rng) < 0 ? 0x80 : 0)));
      else
        v[at] = t == 0 ? 127.f : float(std::uniform_int_distribution<int>(-127, 127)(rng));
    }
  AttentionParams p;
  p.q = rt::Tensor::from_vector(q, {1, len, h, d});
  p.k = rt::Tensor::from_vector(k, {1, len, h, d});
  p.v = rt::Tensor::from_vector(v, {1, len, h, d});
  // Uniform integers in [-a, a] have a variance of about a²/3: scores of unit spread.
  p.scale = float(3.0 / (double(qmax) * qmax * std::sqrt(double(d))));
  return p;
}

}  // namespace

TEST_CASE("quant.names", "[quant]") {
  for (AttnQuant q : {AttnQuant::None, AttnQuant::Int8, AttnQuant::Int8Fp8Pv, AttnQuant::Int4}) {
    AttnQuant back = AttnQuant::None;
    REQUIRE(sattn::parse_attn_quant(sattn::attn_quant_name(q), &back));
    CHECK(back == q);
  }
  AttnQuant untouched = AttnQuant::Int4;
  CHECK_FALSE(sattn::parse_attn_quant("fp8", &untouched));
  CHECK_FALSE(sattn::parse_attn_quant("INT8", &untouched));
  CHECK(untouched == AttnQuant::Int4);
}

TEST_CASE("quant.round_e4m3", "[quant]") {
  using sattn::reference::round_e4m3;
  // Every finite e4m3 value is a fixed point.
  for (int b = 0; b < 256; ++b) {
    if ((b & 0x7f) == 0x7f) continue;  // NaN
    const float x = rt::f8e4m3_to_f32(uint8_t(b));
    CHECK(round_e4m3(x) == x);
  }
  CHECK(round_e4m3(500.f) == 448.f);
  CHECK(round_e4m3(-1e9f) == -448.f);
  CHECK(round_e4m3(1.0625f) == 1.f);     // tie between 1 and 1.125: the even mantissa
  CHECK(round_e4m3(1.1875f) == 1.25f);   // tie between 1.125 and 1.25
  CHECK(round_e4m3(1.07f) == 1.125f);
  CHECK(round_e4m3(0x1p-10f) == 0.f);    // tie between 0 and the smallest subnormal 2^-9
  CHECK(round_e4m3(0x3p-10f) == 0x1p-8f);  // tie between 2^-9 and 2^-8: the even one
  CHECK(round_e4m3(432.f) == 448.f);     // tie between 416 and 448: 448 (mantissa 6) is even
}

// e4m3_from_log2 (the sm90ws kernel's P codes, quant.h). Bounds from the construction: the code is
// 8y + 56 + d, d in [-0.85, 0.15] (kQuantCodeOffset -0.35 and the rounding's half step), and a code's value
// is Mitchell's chord, 1 to 1.0615 times 2^(code / 8 - 7); a code step is at most 1/8 of the value (at the
// bottom of a binade), so value / 2^y lies in [1 - 0.85/8, 1.0615 · (1 + 0.15/8)] = [0.894, 1.082] for
// normal values.
TEST_CASE("quant.e4m3 codes from log2 P", "[quant]") {
  using sattn::reference::e4m3_from_log2;
  for (int y = -6; y <= 8; ++y) CHECK(e4m3_from_log2(float(y)) == std::ldexp(1.f, y));  // powers of two exact
  CHECK(e4m3_from_log2(std::log2(448.f)) == 448.f);
  CHECK(e4m3_from_log2(9.5f) == 448.f);  // clamped to code 126, never NaN's 127
  CHECK(e4m3_from_log2(-7.2f) == 0.f);
  CHECK(e4m3_from_log2(-INFINITY) == 0.f);
  CHECK(e4m3_from_log2(-6.5f) == std::ldexp(4.f, -9));  // a subnormal: code round(-52 + 55.65) = 4
  float prev = 0.f, lo = 2.f, hi = 0.f;
  for (float y = -6.f; y <= std::log2(448.f); y += 1.f / 1024.f) {
    const float v = e4m3_from_log2(y);
    CHECK(v >= prev);  // monotone
    prev = v;
    lo = std::min(lo, v / std::exp2(y)), hi = std::max(hi, v / std::exp2(y));
  }
  std::printf("  e4m3 codes from log2 P: value / 2^y in [%.4f, %.4f] over y in [-6, log2 448]\n", lo, hi);
  CHECK(lo >= 0.894f);
  CHECK(hi <= 1.082f);
}

TEST_CASE("quant.none equals the f32 layout reference", "[quant]") {
  for (int64_t d : {64, 128}) {
    const BlockLayout l = gna_layout(15, 18, 30, 22);
    const AttentionParams p = random_qkv(2, l.seq_len, 2, d, 7 + d);
    const rt::Tensor want = sattn::reference::block_layout_attention_cpu(ctx(), p, l);
    CHECK(rel_l2(sattn::reference::quant_attention_cpu(ctx(), p, l, AttnQuant::None), want) <= kTol);
    sattn::reference::QuantReferenceOptions no_smoothing;
    no_smoothing.smooth_k = false;
    CHECK(rel_l2(sattn::reference::quant_attention_cpu(ctx(), p, l, AttnQuant::None, no_smoothing), want) <= kTol);
  }
}

TEST_CASE("quant.exactly representable operands equal the f32 layout reference", "[quant]") {
  sattn::reference::QuantReferenceOptions keep_p;
  keep_p.quantize_p = false;
  for (AttnQuant quant : {AttnQuant::Int8, AttnQuant::Int8Fp8Pv, AttnQuant::Int4})
    for (int64_t d : {64, 128}) {
      INFO(sattn::attn_quant_name(quant) << " D=" << d);
      const BlockLayout l = gna_layout(15, 18, 30, 22);  // 300 tokens
      const AttentionParams p = representable_qkv(l.seq_len, 2, d, quant, 11 + d);
      const rt::Tensor want = sattn::reference::block_layout_attention_cpu(ctx(), p, l);
      CHECK(rel_l2(sattn::reference::quant_attention_cpu(ctx(), p, l, quant, keep_p), want) <= kTol);
      // Quantizing P is the one lossy stage left: not zero; measured 5.2e-3..5.9e-3 with u8 P (int8, int4),
      // 2.1e-2 with e4m3 P (3 mantissa bits).
      const double with_p = rel_l2(sattn::reference::quant_attention_cpu(ctx(), p, l, quant), want);
      std::printf("  %s D=%lld: P quantized, the rest exact: %.2e\n", sattn::attn_quant_name(quant), (long long)d, with_p);
      CHECK(with_p > 0.0);
      CHECK(with_p < (sattn::quant_pv_fp8(quant) ? 3e-2 : 1e-2));
    }
}

// Measured (relative L2 against block_layout_attention_cpu, randn q/k/v, scale 1/sqrt(D)):
//   L=300 GNA (perm, partial tiles)  D=64:  int8 1.46e-2, int8-fp8pv 3.55e-2, int4 2.12e-1
//                                    D=128: int8 1.44e-2, int8-fp8pv 3.49e-2, int4 2.17e-1
//   L=1000 dense (ragged last tile)  D=64:  int8 1.85e-2, int8-fp8pv 3.94e-2, int4 2.34e-1
//                                    D=128: int8 1.80e-2, int8-fp8pv 3.74e-2, int4 2.36e-1
//   int8-fp8pv with P's codes from log2 P (p_codes, session 24): 4.09e-2, 4.09e-2, 4.51e-2, 4.27e-2
// Random scores are the hard case (flat softmax rows: every score error and every small P counts). Budget
// of int8, roughly: Q/K rounding (step max|x|/127 ~ 0.03 sigma for Gaussian blocks) moves each score by
// ~1.3e-2, V and P rounding add ~0.7e-2 each. e4m3 rounds P and V to 3 mantissa bits (~2e-2 each), and
// INT4's step max|x|/7 ~ 0.55 sigma moves scores by ~0.2: the bounds below are the measured values plus
// margin, not the 2e-2 for every mode (int8 meets it, int8-fp8pv and int4 cannot on such data).
TEST_CASE("quant.random inputs error bounds", "[quant]") {
  struct Case {
    const char* name;
    BlockLayout layout;
  };
  const Case cases[] = {{"L=300 gna", gna_layout(15, 18, 30, 22)}, {"L=1000 dense", dense_layout(1000)}};
  for (const Case& c : cases)
    for (int64_t d : {64, 128}) {
      const AttentionParams p = random_qkv(1, c.layout.seq_len, 2, d, 31 + d + c.layout.seq_len);
      const double int8 = sattn::reference::quant_error(ctx(), p, c.layout, AttnQuant::Int8);
      const double fp8 = sattn::reference::quant_error(ctx(), p, c.layout, AttnQuant::Int8Fp8Pv);
      const double int4 = sattn::reference::quant_error(ctx(), p, c.layout, AttnQuant::Int4);
      sattn::reference::QuantReferenceOptions codes;
      codes.p_codes = true;
      const double fp8_codes = sattn::reference::quant_error(ctx(), p, c.layout, AttnQuant::Int8Fp8Pv, codes);
      std::printf("  quant error %s D=%lld: int8 %.2e, int8-fp8pv %.2e (P codes from log2 P: %.2e), int4 %.2e\n",
                  c.name, (long long)d, int8, fp8, fp8_codes, int4);
      CHECK(int8 < 2e-2);
      CHECK(fp8 < 5e-2);
      CHECK(fp8_codes < 5e-2);
      CHECK(fp8_codes < 1.2 * fp8);  // the codes cost at most a fifth more error than P rounded to nearest
      CHECK(int4 < 3e-1);
    }
}

// tiles_per_step groups the visited tiles into softmax steps (the sm90ws kernel's two per step). Grouping
// only moves where P is rounded: with P kept in f32 every grouping equals the f32 layout reference; with P
// quantized, groupings of 1, 2 and 3 tiles round P differently (the outputs differ by the rounding noise)
// and stay equally far from exact attention.
TEST_CASE("quant.tiles per softmax step", "[quant]") {
  const BlockLayout l = dense_layout(1000);  // 16 key tiles per query tile, the last one ragged
  const AttentionParams p = random_qkv(1, l.seq_len, 2, 64, 77);
  const rt::Tensor exact = sattn::reference::block_layout_attention_cpu(ctx(), p, l);
  for (AttnQuant quant : {AttnQuant::Int8, AttnQuant::Int8Fp8Pv}) {
    INFO(sattn::attn_quant_name(quant));
    sattn::reference::QuantReferenceOptions one, keep_p;
    keep_p.quantize_p = false;
    const rt::Tensor per_tile = sattn::reference::quant_attention_cpu(ctx(), p, l, quant, one);
    const rt::Tensor kept = sattn::reference::quant_attention_cpu(ctx(), p, l, quant, keep_p);
    const double err_one = rel_l2(per_tile, exact);
    for (int group : {2, 3}) {
      INFO("tiles_per_step " << group);
      sattn::reference::QuantReferenceOptions o = keep_p;
      o.tiles_per_step = group;
      CHECK(rel_l2(sattn::reference::quant_attention_cpu(ctx(), p, l, quant, o), kept) <= kTol);
      o.quantize_p = true;
      const rt::Tensor grouped = sattn::reference::quant_attention_cpu(ctx(), p, l, quant, o);
      const double apart = rel_l2(grouped, per_tile), err = rel_l2(grouped, exact);
      std::printf("  %s, %d tiles per step: %.2e from 1 per step; error %.2e (1 per step: %.2e)\n",
                  sattn::attn_quant_name(quant), group, apart, err, err_one);
      CHECK(apart > 0.0);
      CHECK(apart < err_one);
      CHECK(std::fabs(err - err_one) < 0.1 * err_one);
    }
  }
}

// sum_quantized_p (the sm90ws kernel's row sum on the tensor core) normalizes by the sum of the P that P·V used.
// With V constant along the keys (each channel quantizes to its maximum level, exactly), the output is then
// V itself up to f32 rounding, whatever P's rounding; the sum of the unquantized P leaves P's rounding noise.
TEST_CASE("quant.row sum of the quantized P", "[quant]") {
  const BlockLayout l = gna_layout(12, 20, 40, 30);  // full and partial tiles, padded text
  AttentionParams p = random_qkv(1, l.seq_len, 2, 64, 5);
  const std::vector<float> row = rt::TorchGenerator(6).randn({1, 1, 2, 64}).to_vector();
  std::vector<float> v(size_t(l.seq_len) * 2 * 64);
  for (size_t i = 0; i < v.size(); ++i) v[i] = row[i % row.size()];
  p.v = rt::Tensor::from_vector(v, {1, l.seq_len, 2, 64});
  const rt::Tensor want = sattn::reference::block_layout_attention_cpu(ctx(), p, l);
  for (AttnQuant quant : {AttnQuant::Int8, AttnQuant::Int8Fp8Pv}) {
    INFO(sattn::attn_quant_name(quant));
    sattn::reference::QuantReferenceOptions quantized_sum;
    quantized_sum.sum_quantized_p = true;
    const double with = rel_l2(sattn::reference::quant_attention_cpu(ctx(), p, l, quant, quantized_sum), want);
    const double without = rel_l2(sattn::reference::quant_attention_cpu(ctx(), p, l, quant), want);
    std::printf("  %s, V constant along the keys: %.2e from V with the quantized sum, %.2e without\n",
                sattn::attn_quant_name(quant), with, without);
    CHECK(with <= kTol);
    CHECK(without > 10 * kTol);
  }
}

// max_headroom_log2 = 2, the sm90ws kernel's lazy running max (int8-fp8pv only): with P kept in f32 the
// result is the exact running max's; with P quantized only P's rounding moves, by less than the
// quantization's own error, which grows by under 10% (e4m3 keeps its relative precision at P's lower
// scale, 112 instead of 448 at the max, down to its subnormals; u8 P would lose 2 bits, and int8 keeps
// the exact max).
TEST_CASE("quant.lazy running max", "[quant]") {
  const BlockLayout l = dense_layout(1000);
  const AttentionParams p = random_qkv(1, l.seq_len, 2, 64, 78);
  const rt::Tensor exact = sattn::reference::block_layout_attention_cpu(ctx(), p, l);
  const AttnQuant quant = AttnQuant::Int8Fp8Pv;
  sattn::reference::QuantReferenceOptions eager;
  eager.tiles_per_step = 3;
  sattn::reference::QuantReferenceOptions lazy = eager;
  lazy.max_headroom_log2 = 2;
  const rt::Tensor want = sattn::reference::quant_attention_cpu(ctx(), p, l, quant, eager);
  const rt::Tensor got = sattn::reference::quant_attention_cpu(ctx(), p, l, quant, lazy);
  const double err_eager = rel_l2(want, exact), err_lazy = rel_l2(got, exact), apart = rel_l2(got, want);
  std::printf("  int8-fp8pv, headroom 2: %.2e from the exact max; error %.2e (exact max: %.2e)\n", apart, err_lazy,
              err_eager);
  CHECK(apart > 0.0);
  CHECK(apart < err_eager);
  CHECK(std::fabs(err_lazy - err_eager) < 0.1 * err_eager);
  eager.quantize_p = lazy.quantize_p = false;
  CHECK(rel_l2(sattn::reference::quant_attention_cpu(ctx(), p, l, quant, lazy),
               sattn::reference::quant_attention_cpu(ctx(), p, l, quant, eager)) <= kTol);
}

// P's codes from log2 P (p_codes, the sm90ws kernel's numerics) with the lazy max, whose moves then land on
// whole code steps past the step's max: as far from exact attention as the codes with the exact running max
// (within 10%), and apart from them by less than that error. Logits of standard deviation 3 make the max
// move after a row's first step too.
TEST_CASE("quant.P codes with the lazy running max", "[quant]") {
  const BlockLayout l = dense_layout(1000);
  AttentionParams p = random_qkv(1, l.seq_len, 2, 64, 79);
  std::vector<float> q = p.q.to_vector();
  for (float& x : q) x *= 3.f;
  p.q = rt::Tensor::from_vector(q, {1, l.seq_len, 2, 64});
  const rt::Tensor exact = sattn::reference::block_layout_attention_cpu(ctx(), p, l);
  sattn::reference::QuantReferenceOptions eager;
  eager.tiles_per_step = 3;
  eager.p_codes = true;
  sattn::reference::QuantReferenceOptions lazy = eager;
  lazy.max_headroom_log2 = 2;
  const rt::Tensor want = sattn::reference::quant_attention_cpu(ctx(), p, l, AttnQuant::Int8Fp8Pv, eager);
  const rt::Tensor got = sattn::reference::quant_attention_cpu(ctx(), p, l, AttnQuant::Int8Fp8Pv, lazy);
  const double err_eager = rel_l2(want, exact), err_lazy = rel_l2(got, exact), apart = rel_l2(got, want);
  std::printf("  int8-fp8pv P codes, headroom 2: %.2e from the exact max; error %.2e (exact max: %.2e)\n", apart,
              err_lazy, err_eager);
  CHECK(apart > 0.0);
  CHECK(apart < err_eager);
  CHECK(std::fabs(err_lazy - err_eager) < 0.1 * err_eager);
}

TEST_CASE("quant.k smoothing", "[quant]") {
  const BlockLayout l = dense_layout(1000);
  const AttentionParams p = random_qkv(1, l.seq_len, 2, 64, 41);
  // k + a per-channel offset of about 16: the same softmax (a constant shift per row).
  AttentionParams shifted = p;
  const rt::Tensor offset = rt::TorchGenerator(42).randn({1, 1, 2, 64});
  std::vector<float> k = p.k.contiguous().to_vector(), off = offset.to_vector();
  for (size_t i = 0; i < k.size(); ++i) k[i] += 16.f + off[i % off.size()];
  shifted.k = rt::Tensor::from_vector(k, p.k.shape());
  const rt::Tensor want = sattn::reference::block_layout_attention_cpu(ctx(), p, l);
  CHECK(rel_l2(sattn::reference::quant_attention_cpu(ctx(), shifted, l, AttnQuant::None), want) <= kTol);

  sattn::reference::QuantReferenceOptions raw;
  raw.smooth_k = false;
  const double smooth = rel_l2(sattn::reference::quant_attention_cpu(ctx(), shifted, l, AttnQuant::Int8), want);
  const double plain = rel_l2(sattn::reference::quant_attention_cpu(ctx(), shifted, l, AttnQuant::Int8, raw), want);
  std::printf("  int8 with a k offset of ~16: smoothed %.2e, not smoothed %.2e\n", smooth, plain);
  CHECK(smooth < 2e-2);
  CHECK(smooth * 2 < plain);  // measured: see the printed line (smoothed ~1.8e-2 as without offset)
}

// The entry point: a gna spec with quant=int8 runs the quantized CPU reference through sattn::attention
// (the tokens and the method on the call, q/k/v in natural order), close to the unquantized method within
// the INT8 bound above and not equal to it.
TEST_CASE("quant.attention entry point runs the quantized method", "[quant]") {
  const int64_t hh = 11, w = 13, text = 24;
  AttentionParams p = random_qkv(1, text + hh * w, 2, 64, 77);
  p.tokens.grid[0] = 1, p.tokens.grid[1] = hh, p.tokens.grid[2] = w;
  p.tokens.text_len = text;
  auto plain = sattn::parse_method("gna:window=1x7x9,stride=1x2x3");
  auto quant = sattn::parse_method("gna:window=1x7x9,stride=1x2x3,quant=int8");
  REQUIRE(plain);
  REQUIRE(quant);
  p.method = *plain;
  const rt::Tensor want = sattn::attention(ctx(), p);
  p.method = *quant;
  const rt::Tensor got = sattn::attention(ctx(), p);
  CHECK(sattn::describe_attention(ctx(), p).find("quantized") != std::string::npos);
  const double e = rel_l2(got, want);
  std::printf("quant.attention: int8 vs bf16-free gna, rel L2 %.3e\n", e);
  CHECK(e > 1e-4);  // really quantized
  CHECK(e < 2e-2);  // the INT8 bound measured on random inputs above
}
