// Load-time conversion (weights/convert.h) and its users: convert_range equals Tensor::to bit for bit for
// every stored/target dtype pair, whatever the range, the split into chunks (staging) and the thread
// count; MappedStore::pieces orders transformed sources as load_f32 did; the WeightLoader's placed
// tensors equal the old path (load_f32, then a conversion to the context's dtype); rt::StagedUpload on
// a CPU context writes in place.
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "harness/safetensors_writer.h"
#include "rng.h"
#include "staged_upload.h"
#include "weights/convert.h"
#include "weights/name_map.h"
// Catch2's CHECK replaces runtime/base/check.h's, so Catch is included last.
#include <catch2/catch.hpp>

using rt::DType;
using rt::Tensor;
using weights::Piece;

static bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.nbytes() == b.nbytes() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// n values of `dtype` from random f32 values (scaled so f16 also sees overflow and subnormals) plus the
// edge cases: zeros of both signs, infinities, a NaN, the largest and smallest floats.
static Tensor sample(DType dtype, int64_t n, uint64_t seed) {
  std::vector<float> v = rt::TorchGenerator(seed).randn({n}).to_vector();
  const float edge[] = {0.f, -0.f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                        std::numeric_limits<float>::quiet_NaN(), 3.4e38f, -1e-40f, 65504.f, 65520.f, 1e-7f};
  for (size_t i = 0; i < v.size(); ++i) v[i] *= float(1 << (i % 24)) / 4096.f;
  for (size_t i = 0; i < std::size(edge) && i < v.size(); ++i) v[i * 7 % v.size()] = edge[i];
  if (dtype == DType::I64) {
    std::vector<int64_t> ints;
    for (size_t i = 0; i < v.size(); ++i) ints.push_back(int64_t(i * 977) - 5000);
    return Tensor::from_vector_i64(ints, {n});
  }
  if (dtype == DType::F8E4M3) {  // every byte pattern, NaNs included: f8 is decoded only
    Tensor t = Tensor::empty({n}, DType::F8E4M3);
    for (int64_t i = 0; i < n; ++i) static_cast<uint8_t*>(t.raw_data())[i] = uint8_t(i * 37 + 11);
    return t;
  }
  return Tensor::from_vector(v, {n}).to(dtype);
}

static Tensor convert_whole(const Tensor& src, DType to, int threads) {
  Tensor out = Tensor::empty(src.shape(), to);
  weights::convert_range({{src.raw_data(), src.dtype(), src.numel()}}, to, out.raw_data(), 0, src.numel(), threads);
  return out;
}

TEST_CASE("convert_range equals Tensor::to bit for bit for every dtype pair", "[weights]") {
  for (DType from : {DType::F32, DType::BF16, DType::F16, DType::F8E4M3, DType::I64}) {
    const Tensor src = sample(from, 1031, 5);
    for (DType to : {DType::F32, DType::BF16, DType::F16}) {
      INFO(rt::dtype_name(from) << " -> " << rt::dtype_name(to));
      // Tensor::to takes i64 only to f32; the loader's i64 goes through f32 like every other dtype.
      CHECK(same_bytes(convert_whole(src, to, 1), from == DType::I64 ? src.to(DType::F32).to(to) : src.to(to)));
      // The loader's old path went through f32: the same bits wherever the stored value is not a NaN
      // (the two steps make a signalling NaN quiet; a byte copy keeps it).
      if (from != DType::F8E4M3) CHECK(same_bytes(convert_whole(src, to, 1), src.to(DType::F32).to(to)));
    }
  }
}

TEST_CASE("same-dtype conversion is a byte copy, NaN payloads included", "[weights]") {
  Tensor src = Tensor::empty({4099}, DType::BF16);
  std::mt19937 rng(3);
  for (int64_t i = 0; i < src.numel(); ++i) static_cast<uint16_t*>(src.raw_data())[i] = uint16_t(rng());
  static_cast<uint16_t*>(src.raw_data())[0] = 0x7f81;  // a signalling NaN
  CHECK(same_bytes(convert_whole(src, DType::BF16, 4), src));
}

TEST_CASE("convert_range over chunks, pieces and threads equals the whole conversion", "[weights]") {
  // Three pieces of different stored dtypes, large enough (32 MiB of f32) that threads share a range.
  const Tensor a = sample(DType::BF16, 3'000'001, 1), b = sample(DType::F32, 2'500'003, 2), c = sample(DType::F16, 2'900'000, 3);
  const std::vector<Piece> pieces = {{a.raw_data(), a.dtype(), a.numel()},
                                     {b.raw_data(), b.dtype(), b.numel()},
                                     {c.raw_data(), c.dtype(), c.numel()}};
  const int64_t n = weights::pieces_numel(pieces);
  REQUIRE(n == a.numel() + b.numel() + c.numel());
  for (DType to : {DType::F32, DType::BF16}) {
    INFO("to " << rt::dtype_name(to));
    // Reference: each piece through Tensor::to, concatenated.
    Tensor want = Tensor::empty({n}, to);
    size_t at = 0;
    for (const Tensor* t : {&a, &b, &c}) {
      const Tensor part = t->to(to);
      std::memcpy(static_cast<char*>(want.raw_data()) + at, part.raw_data(), part.nbytes());
      at += part.nbytes();
    }
    for (int threads : {1, 3, 8}) {
      Tensor whole = Tensor::empty({n}, to);
      weights::convert_range(pieces, to, whole.raw_data(), 0, n, threads);
      CHECK(same_bytes(whole, want));
    }
    // Chunks as a staging buffer cuts them: odd sizes, boundaries inside and across pieces.
    Tensor chunked = Tensor::empty({n}, to);
    const size_t es = rt::dtype_size(to);
    std::mt19937 rng(9);
    for (int64_t begin = 0; begin < n;) {
      const int64_t end = std::min(n, begin + 1 + int64_t(rng() % 3'000'000));
      weights::convert_range(pieces, to, static_cast<char*>(chunked.raw_data()) + size_t(begin) * es, begin, end, 4);
      begin = end;
    }
    CHECK(same_bytes(chunked, want));
  }
}

static std::shared_ptr<weights::MappedStore> mixed_store() {
  weights::NameMap m;
  m.concat_rows({"b.{i}.q", "b.{i}.k", "b.{i}.v"}, "blocks.{i}.qkv")
      .swap_halves("norm_out.weight", "final.weight")
      .reshape("conv.weight", "proj.weight", {6, 5})
      .rename("i64.weight", "ints.weight");
  auto tensor = [](const std::string& name, DType dt, const rt::Shape& shape, uint64_t seed) {
    Tensor t = sample(dt, rt::shape_numel(shape), seed).view(shape);
    return test::st_from_tensor(name, t);
  };
  const std::string path = test::make_temp_dir("convert") + "/m.safetensors";
  test::write_safetensors(path, {tensor("b.0.q", DType::BF16, {3, 5}, 1), tensor("b.0.k", DType::F16, {2, 5}, 2),
                                 tensor("b.0.v", DType::F32, {1, 5}, 3), tensor("norm_out.weight", DType::BF16, {6, 3}, 4),
                                 tensor("conv.weight", DType::F8E4M3, {6, 5, 1, 1}, 5),
                                 tensor("i64.weight", DType::I64, {7}, 6)});
  auto store = weights::TensorStore::open(path);
  REQUIRE(store.is_ok());
  auto ms = weights::MappedStore::create(std::move(store).value(), m);
  INFO(ms.status().message());
  REQUIRE(ms.is_ok());
  return std::move(ms).value();
}

// load_f32 as it was before pieces: each source converted alone, then the transform on f32 rows.
static Tensor old_load_f32(const weights::MappedStore& ms, const std::string& canonical) {
  const weights::TensorStore& s = ms.source();
  if (canonical == "blocks.0.qkv") {
    const Tensor q = s.load_f32("b.0.q"), k = s.load_f32("b.0.k"), v = s.load_f32("b.0.v");
    std::vector<float> all = q.to_vector();
    for (const Tensor* t : {&k, &v}) {
      const std::vector<float> part = t->to_vector();
      all.insert(all.end(), part.begin(), part.end());
    }
    return Tensor::from_vector(all, {6, 5});
  }
  if (canonical == "final.weight") {
    const std::vector<float> v = s.load_f32("norm_out.weight").to_vector();
    std::vector<float> out(v.begin() + 9, v.end());
    out.insert(out.end(), v.begin(), v.begin() + 9);
    return Tensor::from_vector(out, {6, 3});
  }
  if (canonical == "proj.weight") return s.load_f32("conv.weight").view({6, 5});
  return s.load_f32("i64.weight");
}

TEST_CASE("pieces, load_f32 and placed loads match the old load path bit for bit", "[weights]") {
  const auto ms = mixed_store();
  const rt::Context cpu;
  for (const std::string& name : ms->names()) {
    INFO(name);
    const Tensor want = old_load_f32(*ms, name);
    const Tensor got = ms->load_f32(name);
    REQUIRE(got.shape() == ms->shape(name));
    CHECK(same_bytes(got, want.contiguous()));
    // Placed on a CPU context and unplaced: the same f32 tensor.
    const Tensor placed = weights::WeightLoader(ms, "t").place(cpu).get(name, ms->shape(name));
    const Tensor plain = weights::WeightLoader(ms, "t").get(name, ms->shape(name));
    CHECK(same_bytes(placed, want.contiguous()));
    CHECK(same_bytes(plain, want.contiguous()));
  }
}

TEST_CASE("WeightLoader load stats count the checkpoint bytes read", "[weights]") {
  const auto ms = mixed_store();
  weights::WeightLoader w(ms, "t");
  CHECK(w.load_stats().source_bytes == 0);
  w.get("blocks.0.qkv", {6, 5});
  w.get("ints.weight", {7});
  // bf16 [3, 5] + f16 [2, 5] + f32 [1, 5] + i64 [7]
  CHECK(w.load_stats().source_bytes == size_t(15 * 2 + 10 * 2 + 5 * 4 + 7 * 8));
  CHECK(w.load_stats().wait_seconds == 0.0);
  CHECK(w.loaded_bytes() == size_t((30 + 7) * 4));
}

TEST_CASE("StagedUpload on a CPU context writes the destination in place", "[weights]") {
  const rt::Context cpu;
  rt::StagedUpload up(cpu);
  Tensor dst = Tensor::empty({5, 7});
  size_t calls = 0;
  up.write(dst, [&](void* out, size_t offset, size_t n) {
    ++calls;
    CHECK(out == dst.raw_data());
    CHECK(offset == 0);
    CHECK(n == dst.nbytes());
    for (size_t i = 0; i < n / 4; ++i) static_cast<float*>(out)[i] = float(i);
  });
  CHECK(calls == 1);
  CHECK(dst.at({4, 6}) == 34.f);
  CHECK(up.stats().bytes == dst.nbytes());
}
