#include "harness/compare.h"

#include <cmath>
#include <sstream>

namespace test {

std::string Diff::str() const {
  std::ostringstream os;
  os << "rel_l2=" << rel_l2 << " max_abs=" << max_abs << " at " << worst << (nan_mismatch ? " NaN/Inf mismatch" : "");
  return os.str();
}

Diff compare(const rt::Tensor& got, const rt::Tensor& want) {
  CHECK(got.shape() == want.shape(), "compare(): shape ", got.str(), " vs ", want.str());
  const auto a = got.to_vector();
  const auto b = want.to_vector();
  Diff d;
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isfinite(a[i]) != std::isfinite(b[i])) d.nan_mismatch = true;
    const double e = double(a[i]) - double(b[i]);
    num += e * e;
    den += double(b[i]) * double(b[i]);
    if (std::fabs(e) > d.max_abs || std::isnan(e)) {
      d.max_abs = std::fabs(e);
      d.worst = int64_t(i);
    }
  }
  d.rel_l2 = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  return d;
}

}  // namespace test
