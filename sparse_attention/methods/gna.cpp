#include "sparse_attention/methods/gna.h"

#include <algorithm>
#include <array>
#include <numeric>
#include <vector>

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

namespace {

// The prime-factor heuristic: each factor to the axis where the grown extent divides the stride, else the
// window, else the smallest extent (ties: the faster axis). It stops at the grid.
void heuristic_box(const MaskRule& r, int64_t volume, int64_t box[3]) {
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

// Estimated tile density of the grid's queries for boxes `b` whose key tiles are the boxes cut in `split`
// along their first axis of extent > 1 (tokens are row-major in a box, so a key tile of volume / split
// tokens is such a slice): per axis, the share of key coordinates in the key tiles that the union of each
// query box's windows meets, averaged over the queries; the axes multiply, as GNA's mask is an AND over
// them. Exact for 2-D rules whose grid the box divides, within a few percent of the planner on Wan2.1's 3-D
// grid (tests/sparse_attention/test_planners.cpp).
double box_tile_share(const MaskRule& r, const int64_t b[3], int64_t split) {
  int cut = 0;
  while (cut < 2 && b[cut] == 1) ++cut;
  double share = 1.0;
  for (int a = 0; a < 3; ++a) {
    const int64_t n = r.tokens.grid[a], d = r.dilation[a];
    const int64_t k = a == cut && b[a] % split == 0 ? b[a] / split : b[a];
    double pairs = 0.0;
    for (int64_t p0 = 0; p0 < n; p0 += b[a]) {
      const int64_t p1 = std::min(n, p0 + b[a]);
      int64_t lo = n, hi = 0;
      for (int64_t i = p0; i < p1; ++i) {
        int64_t start, end;
        neighborhood_window(i, n, r.window[a], r.stride[a], d, r.causal[a], &start, &end);
        lo = std::min(lo, i % d + d * start), hi = std::max(hi, i % d + d * (end - 1) + 1);
      }
      pairs += double(std::min(n, (hi + k - 1) / k * k) - lo / k * k) * double(p1 - p0);
    }
    share *= pairs / (double(n) * double(n));
  }
  return share;
}

}  // namespace

void gna_box(const MaskRule& r, int64_t volume, int64_t box[3], int64_t kv_tile) {
  heuristic_box(r, volume, box);
  if (box[0] * box[1] * box[2] != volume) return;  // a grid smaller than the box: nothing else fits
  const int64_t split = kv_tile > 0 && volume % kv_tile == 0 ? volume / kv_tile : 1;
  auto inside = [&](const int64_t b[3]) {
    return r.stride[0] % b[0] == 0 && r.stride[1] % b[1] == 0 && r.stride[2] % b[2] == 0;
  };
  // Every split of the volume over the axes that fits the grid; boxes inside one stride group first (all of
  // a query tile's rows then share a window: sm90ws packs their keys), the heuristic's box on ties.
  std::vector<std::array<int64_t, 3>> candidates;
  for (int64_t t = 1; t <= volume; ++t) {
    if (volume % t != 0) continue;
    for (int64_t h = 1; h <= volume / t; ++h) {
      if ((volume / t) % h != 0) continue;
      const std::array<int64_t, 3> c = {t, h, volume / t / h};
      if (c[0] <= r.tokens.grid[0] && c[1] <= r.tokens.grid[1] && c[2] <= r.tokens.grid[2]) candidates.push_back(c);
    }
  }
  bool any_inside = false;
  for (const auto& c : candidates) any_inside = any_inside || inside(c.data());
  double best = inside(box) || !any_inside ? box_tile_share(r, box, split) : 2.0;
  for (const auto& c : candidates) {
    if (any_inside && !inside(c.data())) continue;
    const double share = box_tile_share(r, c.data(), split);
    if (share < best * (1.0 - 1e-9)) best = share, std::copy(c.begin(), c.end(), box);
  }
}

BlockLayout plan_gna(const MaskRule& rule, int64_t q_tile, int64_t kv_tile, const int64_t* box_in) {
  int64_t box[3];
  if (box_in)
    std::copy(box_in, box_in + 3, box);
  else
    gna_box(rule, std::lcm(q_tile, kv_tile), box, kv_tile);
  return plan_tiled(rule, q_tile, kv_tile, relayout_boxes(rule.tokens, box), NeighborhoodMethod(rule));
}

}  // namespace sattn
