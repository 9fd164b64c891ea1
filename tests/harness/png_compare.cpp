#define DITRUN_NO_SHORT_CHECK  // CHECK below is Catch2's
#include "harness/png_compare.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>

#include "app/io/png_writer.h"

namespace test {

PngDiff compare_png(const std::string& a, const std::string& b) {
  PngDiff d;
  int aw = 0, ah = 0, bw = 0, bh = 0;
  auto got = app::read_png_rgb8(a, &aw, &ah);
  if (!got.is_ok()) {
    d.error = "cannot read " + a;
    return d;
  }
  auto want = app::read_png_rgb8(b, &bw, &bh);
  if (!want.is_ok()) {
    d.error = "cannot read " + b;
    return d;
  }
  d.width = aw;
  d.height = ah;
  if (aw != bw || ah != bh || got->size() != want->size() || got->empty()) {
    d.error = "size mismatch: " + std::to_string(aw) + "x" + std::to_string(ah) + " vs " + std::to_string(bw) + "x" +
              std::to_string(bh);
    return d;
  }
  double sum = 0;
  size_t within2 = 0;
  for (size_t i = 0; i < got->size(); ++i) {
    const int v = std::abs(int((*got)[i]) - int((*want)[i]));
    sum += v;
    within2 += v <= 2;
    d.worst = std::max(d.worst, v);
  }
  d.mean_abs = sum / double(got->size());
  d.within2 = double(within2) / double(got->size());
  d.ok = true;
  return d;
}

void check_png_matches(const std::string& got, const std::string& want, int width, int height) {
  const PngDiff d = compare_png(got, want);
  INFO(d.error);
  REQUIRE(d.ok);
  REQUIRE(d.width == width);
  REQUIRE(d.height == height);
  INFO(got << " vs " << want << ": mean abs diff " << d.mean_abs << ", within 2 levels " << d.within2 * 100
           << "%, worst " << d.worst);
  CHECK(d.mean_abs <= 0.5);
  CHECK(d.within2 >= 0.99);
}

}  // namespace test
