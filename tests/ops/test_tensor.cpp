// rt::Tensor views (shapes, strides, offsets as PyTorch gives them), copies of strided views, and the
// storage dtype conversions (bf16/f16 rounding, f8_e4m3 decoding), checked bit for bit.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "harness/naive.h"
#include "tensor.h"

// runtime/base/check.h defines an aborting CHECK; in tests CHECK must be Catch's non-fatal one.
#include <catch2/catch.hpp>

using rt::DType;
using rt::Shape;
using rt::Tensor;

namespace {

// 0, 1, 2, ... in row-major order, so every element's value is its linear index in the base tensor.
Tensor iota(const Shape& shape) {
  std::vector<float> v(size_t(rt::shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i);
  return Tensor::from_vector(v, shape);
}

float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

TEST_CASE("tensor.view infers -1 and keeps storage", "[tensor]") {
  const Tensor t = iota({2, 3, 4});
  const Tensor v = t.view({4, -1});
  CHECK(v.shape() == Shape{4, 6});
  CHECK(v.strides() == Shape{6, 1});
  CHECK(v.raw_data() == t.raw_data());
  CHECK(t.view({-1}).shape() == Shape{24});
  CHECK(t.view({2, -1, 3}).shape() == Shape{2, 4, 3});
  CHECK(v.at({3, 5}) == 23.f);
  // A view of a slice along the outermost dim is still contiguous and keeps the offset.
  const Tensor s = t.slice(0, 1, 2).view({3, 4});
  CHECK(s.at({0, 0}) == 12.f);
  CHECK(s.at({2, 3}) == 23.f);
}

TEST_CASE("tensor.permute transpose strides", "[tensor]") {
  const Tensor t = iota({2, 3, 4});
  CHECK(t.strides() == Shape{12, 4, 1});
  const Tensor p = t.permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == Shape{1, 12, 4});
  CHECK_FALSE(p.is_contiguous());
  CHECK(p.at({3, 1, 2}) == float(1 * 12 + 2 * 4 + 3));
  const Tensor n = t.permute({-1, -3, -2});  // negative dims as in torch
  CHECK(n.shape() == p.shape());
  CHECK(n.strides() == p.strides());
  const Tensor tr = t.transpose(0, 2);
  CHECK(tr.shape() == Shape{4, 3, 2});
  CHECK(tr.strides() == Shape{1, 4, 12});
  CHECK(t.transpose(-1, -2).shape() == Shape{2, 4, 3});
}

TEST_CASE("tensor.slice select unsqueeze offsets", "[tensor]") {
  const Tensor t = iota({2, 3, 4});
  const Tensor s = t.slice(1, 1, 3);
  CHECK(s.shape() == Shape{2, 2, 4});
  CHECK(s.strides() == Shape{12, 4, 1});
  CHECK(s.offset() == 4);
  CHECK_FALSE(s.is_contiguous());
  CHECK(s.at({1, 1, 3}) == float(12 + 8 + 3));
  const Tensor e = t.slice(2, 0, 0);  // empty slice is legal
  CHECK(e.numel() == 0);

  const Tensor sel = t.select(1, 2);
  CHECK(sel.shape() == Shape{2, 4});
  CHECK(sel.strides() == Shape{12, 1});
  CHECK(sel.offset() == 8);
  CHECK(sel.at({1, 2}) == float(12 + 8 + 2));
  CHECK(t.select(-1, 3).at({1, 2}) == float(12 + 8 + 3));

  const Tensor u1 = t.unsqueeze(1);
  CHECK(u1.shape() == Shape{2, 1, 3, 4});
  CHECK(u1.is_contiguous());
  CHECK(t.unsqueeze(-1).shape() == Shape{2, 3, 4, 1});
  CHECK(t.unsqueeze(0).shape() == Shape{1, 2, 3, 4});
  CHECK(t.unsqueeze(-1).is_contiguous());
  // unsqueeze of a strided view stays a valid view of the same elements.
  const Tensor us = t.transpose(0, 2).unsqueeze(1);
  CHECK(us.shape() == Shape{4, 1, 3, 2});
  CHECK(us.at({3, 0, 2, 1}) == t.at({1, 2, 3}));
}

TEST_CASE("tensor.expand uses zero strides", "[tensor]") {
  const Tensor b = iota({3, 1});
  const Tensor e = b.expand({2, 3, 4});
  CHECK(e.shape() == Shape{2, 3, 4});
  CHECK(e.strides() == Shape{0, 1, 0});
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) CHECK(e.at({i, j, k}) == float(j));
  const std::vector<float> c = e.contiguous().to_vector();
  REQUIRE(c.size() == 24);
  for (size_t i = 0; i < c.size(); ++i) CHECK(c[i] == float((i / 4) % 3));
  // expand of a strided view: broadcast a column of a transposed matrix.
  const Tensor col = iota({4, 3}).transpose(0, 1).slice(1, 2, 3);  // [3, 1]: column 2 of the transpose, values 6, 7, 8
  const Tensor ce = col.expand({3, 5});
  for (int64_t j = 0; j < 5; ++j) CHECK(ce.at({1, j}) == 2.f * 3 + 1);
}

TEST_CASE("tensor.contiguous of permuted and sliced view", "[tensor]") {
  const Shape base{3, 4, 5, 2};
  const Tensor t = iota(base);
  // v[a, b, c] = t[1 + c, b, 1:4 -> a, 1]  (permute, then slice, then select)
  const Tensor v = t.permute({2, 1, 0, 3}).slice(0, 1, 4).select(3, 1).slice(2, 1, 3);
  REQUIRE(v.shape() == Shape{3, 4, 2});
  const Tensor c = v.contiguous();
  CHECK(c.is_contiguous());
  CHECK(c.strides() == Shape{8, 2, 1});
  const std::vector<float> got = c.to_vector();
  for (int64_t a = 0; a < 3; ++a)
    for (int64_t b = 0; b < 4; ++b)
      for (int64_t cc = 0; cc < 2; ++cc) {
        const float want = float(naive::lin(base, {1 + cc, b, 1 + a, 1}));
        CHECK(got[size_t(naive::lin({3, 4, 2}, {a, b, cc}))] == want);
      }
  // reshape of the non-contiguous view copies in the same order.
  const Tensor r = v.reshape({-1});
  CHECK(r.shape() == Shape{24});
  CHECK(r.to_vector() == got);
  // contiguous() of an already contiguous tensor shares storage; clone() does not.
  CHECK(c.contiguous().raw_data() == c.raw_data());
  Tensor cl = c.clone();
  cl.data<float>()[0] = -1.f;
  CHECK(c.at({0, 0, 0}) != -1.f);
}

TEST_CASE("tensor.to bf16 round-half-even and NaN", "[tensor][dtype]") {
  // Exactly representable values survive the round trip.
  const std::vector<float> exact{0.f,     -0.f,       1.f, -2.5f, 3.140625f, std::numeric_limits<float>::min(),
                                 65280.f, -0.0078125f};
  const Tensor x = Tensor::from_vector(exact, {int64_t(exact.size())});
  const Tensor b = x.to(DType::BF16);
  CHECK(b.dtype() == DType::BF16);
  const std::vector<float> back = b.to(DType::F32).to_vector();
  for (size_t i = 0; i < exact.size(); ++i) CHECK(back[i] == exact[i]);
  CHECK(std::signbit(back[1]));

  // 1 + 2^-8 lies halfway between 1 (even mantissa) and 1 + 2^-7: rounds down.
  CHECK(rt::f32_to_bf16(1.f + std::ldexp(1.f, -8)) == 0x3f80);
  // 1 + 3·2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even): rounds up.
  CHECK(rt::f32_to_bf16(1.f + 3 * std::ldexp(1.f, -8)) == 0x3f82);
  // Just above the tie rounds up; just below rounds down.
  CHECK(rt::f32_to_bf16(f32_from_bits(0x3f808001u)) == 0x3f81);
  CHECK(rt::f32_to_bf16(f32_from_bits(0x3f807fffu)) == 0x3f80);
  // Negative ties mirror positive ones.
  CHECK(rt::f32_to_bf16(-(1.f + 3 * std::ldexp(1.f, -8))) == 0xbf82);
  // The largest finite float rounds to inf (as torch does); inf stays inf.
  CHECK(rt::f32_to_bf16(std::numeric_limits<float>::max()) == 0x7f80);
  CHECK(rt::f32_to_bf16(-INFINITY) == 0xff80);
  // NaN stays NaN even when its payload lives only in the low 16 bits (truncation would give inf).
  const float low_nan = f32_from_bits(0x7f800001u);
  CHECK(std::isnan(rt::bf16_to_f32(rt::f32_to_bf16(low_nan))));
  CHECK(std::isnan(rt::bf16_to_f32(rt::f32_to_bf16(NAN))));
  const Tensor nan_t = Tensor::from_vector({NAN, low_nan, -NAN}, {3}).to(DType::BF16).to(DType::F32);
  for (float f : nan_t.to_vector()) CHECK(std::isnan(f));
  CHECK(rt::bf16_to_f32(0x4049) == 3.140625f);
}

TEST_CASE("tensor.to f16 subnormals overflow ties", "[tensor][dtype]") {
  using rt::f16_to_f32;
  using rt::f32_to_f16;
  CHECK(f32_to_f16(1.f) == 0x3c00);
  CHECK(f32_to_f16(-2.f) == 0xc000);
  CHECK(f32_to_f16(65504.f) == 0x7bff);  // largest finite half
  CHECK(f32_to_f16(65519.f) == 0x7bff);  // below the halfway point to 65536
  CHECK(f32_to_f16(65520.f) == 0x7c00);  // the tie rounds to even, which is inf
  CHECK(f32_to_f16(1e6f) == 0x7c00);
  CHECK(f32_to_f16(-1e6f) == 0xfc00);
  CHECK(f32_to_f16(INFINITY) == 0x7c00);
  CHECK(std::isnan(f16_to_f32(f32_to_f16(NAN))));
  CHECK(std::isinf(f16_to_f32(0x7c00)));
  CHECK(std::isnan(f16_to_f32(0x7c01)));
  // Normal ties: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 -> 1 (even); 1 + 3·2^-11 -> 1 + 2^-9.
  CHECK(f32_to_f16(1.f + std::ldexp(1.f, -11)) == 0x3c00);
  CHECK(f32_to_f16(1.f + 3 * std::ldexp(1.f, -11)) == 0x3c02);
  // A tie that carries into the exponent: 2 - 2^-11 -> 2.
  CHECK(f32_to_f16(2.f - std::ldexp(1.f, -11)) == 0x4000);
  // Subnormals are multiples of 2^-24.
  CHECK(f32_to_f16(std::ldexp(1.f, -24)) == 0x0001);
  CHECK(f32_to_f16(std::ldexp(1.f, -25)) == 0x0000);  // tie between 0 and 2^-24 -> 0
  CHECK(f32_to_f16(std::ldexp(3.f, -25)) == 0x0002);  // tie between 1 and 2 units -> 2
  CHECK(f32_to_f16(std::ldexp(1.f, -26)) == 0x0000);
  CHECK(f32_to_f16(-std::ldexp(5.f, -24)) == 0x8005);
  CHECK(f32_to_f16(std::ldexp(2047.f, -25)) == 0x0400);  // 1023.5 units rounds up to the smallest normal
  CHECK(f32_to_f16(std::ldexp(1.f, -14)) == 0x0400);
  CHECK(f16_to_f32(0x0001) == std::ldexp(1.f, -24));
  CHECK(f16_to_f32(0x03ff) == std::ldexp(1023.f, -24));
  CHECK(f16_to_f32(0x8001) == -std::ldexp(1.f, -24));
  CHECK(std::signbit(f16_to_f32(0x8000)));
  CHECK(f16_to_f32(0x3555) == 0.333251953125f);
  // Every finite half value survives f16 -> f32 -> f16 exactly.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;
    if (f32_to_f16(f16_to_f32(uint16_t(h))) != h) FAIL("half 0x" << std::hex << h << " does not round-trip");
  }
  // Through Tensor::to on a strided view.
  const Tensor t = Tensor::from_vector({0.5f, 1e-7f, -3.f, 70000.f}, {2, 2}).transpose(0, 1);
  const std::vector<float> back = t.to(DType::F16).to(DType::F32).to_vector();
  CHECK(back[0] == 0.5f);
  CHECK(back[1] == -3.f);
  CHECK(back[2] == std::ldexp(2.f, -24));  // 1e-7 = 1.68 units of 2^-24
  CHECK(std::isinf(back[3]));
}

TEST_CASE("tensor.f8e4m3 decode", "[tensor][dtype]") {
  using rt::f8e4m3_to_f32;
  CHECK(f8e4m3_to_f32(0x00) == 0.f);
  CHECK(std::signbit(f8e4m3_to_f32(0x80)));
  CHECK(f8e4m3_to_f32(0x38) == 1.f);
  CHECK(f8e4m3_to_f32(0x3c) == 1.5f);
  CHECK(f8e4m3_to_f32(0xc0) == -2.f);
  CHECK(f8e4m3_to_f32(0x7e) == 448.f);  // largest finite (FN variant)
  CHECK(f8e4m3_to_f32(0xfe) == -448.f);
  CHECK(f8e4m3_to_f32(0x78) == 256.f);  // exponent 15 is finite in FN
  CHECK(std::isnan(f8e4m3_to_f32(0x7f)));
  CHECK(std::isnan(f8e4m3_to_f32(0xff)));
  CHECK(f8e4m3_to_f32(0x01) == std::ldexp(1.f, -9));  // smallest subnormal
  CHECK(f8e4m3_to_f32(0x07) == std::ldexp(7.f, -9));
  CHECK(f8e4m3_to_f32(0x08) == std::ldexp(1.f, -6));  // smallest normal
  // As a tensor.
  auto bytes = std::make_shared<std::vector<uint8_t>>(std::vector<uint8_t>{0x38, 0xc0, 0x7e, 0x01});
  const Tensor t = Tensor::wrap(bytes->data(), {2, 2}, DType::F8E4M3, bytes);
  CHECK(t.to(DType::F32).to_vector() == std::vector<float>{1.f, -2.f, 448.f, std::ldexp(1.f, -9)});
}

// The encoder against a brute-force oracle: the finite code whose value is nearest, ties to the code with an
// even mantissa, anything beyond ±448 saturated.
TEST_CASE("tensor.f8e4m3 encode", "[tensor][dtype]") {
  using rt::f8e4m3_to_f32;
  using rt::f32_to_f8e4m3;
  auto oracle = [](float x) {
    const uint8_t sign = std::signbit(x) ? 0x80 : 0;
    const float a = std::fabs(x);
    uint8_t best = 0;
    for (uint8_t c = 1; c <= 0x7e; ++c) {
      const float d = std::fabs(f8e4m3_to_f32(c) - a), db = std::fabs(f8e4m3_to_f32(best) - a);
      if (d < db || (d == db && (c & 1) == 0)) best = c;
    }
    return uint8_t(sign | best);
  };
  // Every finite code round-trips (both zeros keep their sign).
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7f) == 0x7f) continue;
    INFO("code " << c);
    CHECK(f32_to_f8e4m3(f8e4m3_to_f32(uint8_t(c))) == uint8_t(c));
  }
  // Every midpoint between neighbouring codes goes to the even one, and points just off it to the nearer.
  for (uint8_t c = 0; c < 0x7e; ++c) {
    const float lo = f8e4m3_to_f32(c), hi = f8e4m3_to_f32(uint8_t(c + 1)), mid = 0.5f * (lo + hi);
    INFO("between codes " << int(c) << " and " << int(c) + 1);
    CHECK(f32_to_f8e4m3(mid) == ((c & 1) == 0 ? c : uint8_t(c + 1)));
    CHECK(f32_to_f8e4m3(std::nextafter(mid, 0.f)) == c);
    CHECK(f32_to_f8e4m3(std::nextafter(mid, 1000.f)) == uint8_t(c + 1));
    CHECK(f32_to_f8e4m3(-mid) == uint8_t(0x80 | f32_to_f8e4m3(mid)));
  }
  CHECK(f32_to_f8e4m3(464.f) == 0x7e);  // past 448's half-step: saturates instead of rounding up
  CHECK(f32_to_f8e4m3(1e30f) == 0x7e);
  CHECK(f32_to_f8e4m3(-INFINITY) == 0xfe);
  CHECK(f32_to_f8e4m3(NAN) == 0x7f);
  CHECK(f32_to_f8e4m3(1e-30f) == 0x00);
  // Random magnitudes over the whole range.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> log2_mag(-12.f, 9.5f);
  for (int i = 0; i < 4000; ++i) {
    const float x = std::exp2(log2_mag(rng)) * (i % 2 ? -1.f : 1.f);
    INFO("x = " << x);
    CHECK(f32_to_f8e4m3(x) == oracle(x));
  }
  // Tensor::to encodes.
  const Tensor f = Tensor::from_vector({1.f, -2.5f, 1000.f, 0.0105f}, {4});
  CHECK(f.to(DType::F8E4M3).to(DType::F32).to_vector() == std::vector<float>{1.f, -2.5f, 448.f, 0.009765625f});
}

TEST_CASE("tensor.i64 values and conversion", "[tensor][dtype]") {
  const Tensor ids = Tensor::from_vector_i64({3, -1, 7, 0, 5, 2}, {2, 3});
  CHECK(ids.transpose(0, 1).contiguous().to_vector_i64() == std::vector<int64_t>{3, 0, -1, 5, 7, 2});
  CHECK(ids.to(DType::F32).to_vector() == std::vector<float>{3, -1, 7, 0, 5, 2});
}
