#include "sparse_attention/methods/gna.h"

#include <algorithm>
#include <numeric>

#include "sparse_attention/methods/tiled_plan.h"

namespace sattn {

namespace {

// Per axis and query coordinate i: the residue g = i % d and the window [start, end) in sub-grid indices,
// i.e. the keys g + d·m for m in [start, end).
struct AxisWindows {
  int64_t d = 1;
  std::vector<int64_t> start, end;

  // First m with g + d·m >= k (k >= 0).
  int64_t first_at_or_after(int64_t g, int64_t k) const { return k <= g ? 0 : (k - g + d - 1) / d; }

  bool any(int64_t q0, int64_t q1, int64_t k0, int64_t k1) const {
    for (int64_t i = q0; i < q1; ++i) {
      const int64_t g = i % d;
      if (std::max(first_at_or_after(g, k0), start[size_t(i)]) < std::min(first_at_or_after(g, k1), end[size_t(i)]))
        return true;
    }
    return false;
  }
  bool all(int64_t q0, int64_t q1, int64_t k0, int64_t k1) const {
    for (int64_t i = q0; i < q1; ++i) {
      const int64_t g = i % d;
      if (d > 1 && (k1 - k0 > 1 || k0 % d != g)) return false;
      const int64_t m0 = d > 1 ? k0 / d : k0, m1 = d > 1 ? m0 + 1 : k1;
      if (m0 < start[size_t(i)] || m1 > end[size_t(i)]) return false;
    }
    return true;
  }
  // [lo, hi): the smallest coordinate range holding every key of the queries [q0, q1).
  void key_range(int64_t q0, int64_t q1, int64_t* lo, int64_t* hi) const {
    *lo = INT64_MAX;
    *hi = 0;
    for (int64_t i = q0; i < q1; ++i) {
      const int64_t g = i % d;
      *lo = std::min(*lo, g + d * start[size_t(i)]);
      *hi = std::max(*hi, g + d * (end[size_t(i)] - 1) + 1);
    }
  }
};

class NeighborhoodMethod final : public GridMethod {
 public:
  explicit NeighborhoodMethod(const MaskRule& r) {
    for (int a = 0; a < 3; ++a) {
      const int64_t len = r.tokens.grid[a];
      AxisWindows& w = axes_[a];
      w.d = r.dilation[a];
      w.start.resize(size_t(len));
      w.end.resize(size_t(len));
      for (int64_t i = 0; i < len; ++i)
        neighborhood_window(i, len, r.window[a], r.stride[a], r.dilation[a], r.causal[a], &w.start[size_t(i)], &w.end[size_t(i)]);
    }
  }
  bool any(const Box& q, const Box& k) const override {
    for (int a = 0; a < 3; ++a)
      if (!axes_[a].any(q.lo[a], q.hi[a], k.lo[a], k.hi[a])) return false;
    return true;
  }
  bool all(const Box& q, const Box& k) const override {
    for (int a = 0; a < 3; ++a)
      if (!axes_[a].all(q.lo[a], q.hi[a], k.lo[a], k.hi[a])) return false;
    return true;
  }
  void key_regions(const Box& q, std::vector<Box>* out) const override {
    Box b;
    for (int a = 0; a < 3; ++a) axes_[a].key_range(q.lo[a], q.hi[a], &b.lo[a], &b.hi[a]);
    out->push_back(b);
  }

 private:
  AxisWindows axes_[3];
};

}  // namespace

void gna_box(const MaskRule& r, int64_t volume, int64_t box[3]) {
  box[0] = box[1] = box[2] = 1;
  std::vector<int64_t> primes;
  for (int64_t p = 2, v = volume; v > 1; ++p)
    for (; v % p == 0; v /= p) primes.push_back(p);
  std::sort(primes.rbegin(), primes.rend());
  for (int64_t p : primes) {
    int best = -1, best_tier = -1;
    for (int a = 2; a >= 0; --a) {
      const int64_t grown = box[a] * p;
      if (grown > r.tokens.grid[a]) continue;
      const int tier = r.stride[a] % grown == 0 ? 2 : (r.window[a] % grown == 0 ? 1 : 0);
      if (best < 0 || tier > best_tier || (tier == best_tier && box[a] < box[best])) best = a, best_tier = tier;
    }
    if (best >= 0) box[best] *= p;
  }
}

BlockLayout plan_gna(const MaskRule& rule, int64_t q_tile, int64_t kv_tile, const int64_t* box_in) {
  int64_t box[3];
  if (box_in)
    std::copy(box_in, box_in + 3, box);
  else
    gna_box(rule, std::lcm(q_tile, kv_tile), box);
  return plan_tiled(rule, q_tile, kv_tile, relayout_boxes(rule.tokens, box), NeighborhoodMethod(rule));
}

}  // namespace sattn
