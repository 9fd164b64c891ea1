#include "harness/png_compare.h"

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

}  // namespace test
