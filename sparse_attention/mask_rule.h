// The element-level definition of every structured attention method: which key a query may attend,
// as a function of the two tokens' indices in natural order. This one function is the semantics of
// dense, GNA and GRAT (../shared/docs/parity-fixtures.md, "The attention module"); the CPU reference
// evaluates it for every (query, key) pair, planners derive block layouts from it, and CUDA kernels call
// it on partially masked tiles, so the three cannot drift. Plain data and inline functions only: the
// header compiles as host code and, under nvcc, as device code.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define SATTN_HD __host__ __device__ __forceinline__
#else
#define SATTN_HD inline
#endif

namespace sattn {

// Where a sequence's tokens come from: a grid of image/video tokens in row-major [T, H, W] order (t
// slowest) and an optional text segment before or after it, of which the first text_valid are real.
struct TokenLayout {
  int64_t grid[3] = {1, 0, 0};  // T, H, W; H == 0: no grid (a plain sequence: only dense methods apply)
  int64_t text_len = 0;
  bool text_before = true;  // Flux puts T5 tokens before the image; HunyuanVideo appends its text
  int64_t text_valid = -1;  // -1: every text token is real

  SATTN_HD int64_t grid_tokens() const { return grid[1] == 0 ? 0 : grid[0] * grid[1] * grid[2]; }
  SATTN_HD int64_t seq_len() const { return grid_tokens() + text_len; }
  SATTN_HD int64_t valid_text() const { return text_valid < 0 ? text_len : text_valid; }
  SATTN_HD int64_t grid_begin() const { return text_before ? text_len : 0; }
  SATTN_HD bool is_grid(int64_t i) const { return i >= grid_begin() && i < grid_begin() + grid_tokens(); }
  // Position inside the text segment of a text token.
  SATTN_HD int64_t text_index(int64_t i) const { return text_before ? i : i - grid_tokens(); }
  // Coordinates (t, h, w) of a grid token.
  SATTN_HD void coords(int64_t i, int64_t c[3]) const {
    const int64_t g = i - grid_begin();
    c[2] = g % grid[2];
    c[1] = (g / grid[2]) % grid[1];
    c[0] = g / (grid[2] * grid[1]);
  }
};

enum class MaskMethod : int32_t {
  Dense = 0,         // every valid key
  Neighborhood = 1,  // GNA / NATTEN: window, stride, dilation, causality per axis
  Group = 2,         // GRAT: variant B (surrounding groups) or X (criss-cross)
};

struct MaskRule {
  TokenLayout tokens;
  MaskMethod method = MaskMethod::Dense;
  // Neighborhood, per axis (t, h, w). A 2-D image uses window[0] = 1 on its T = 1 axis.
  int64_t window[3] = {1, 1, 1}, stride[3] = {1, 1, 1}, dilation[3] = {1, 1, 1};
  bool causal[3] = {false, false, false};
  // Group, per axis (t, h, w); radius b for variant B.
  int64_t group[3] = {1, 1, 1};
  int64_t radius = 1;
  bool criss_cross = false;  // true: variant X, false: variant B
};

// NATTEN's per-axis neighborhood rule (sparse-attention.md §2.1) for coordinate i on an axis of length L:
// the keys it may attend are the coordinates j with j % d == i % d and j / d in [*start, *end) (indices
// of i's dilation sub-grid). Constant window size (shifted, not clipped, at the borders); the queries of one
// stride group share their leader's window; causal windows end at the query.
SATTN_HD void neighborhood_window(int64_t i, int64_t L, int64_t w, int64_t s, int64_t d, bool causal, int64_t* start,
                                  int64_t* end) {
  if (d > 1) {
    const int64_t g = i % d;
    L = L / d + 1 - (g + d - L % d) / d;
    i /= d;
  }
  const int64_t left = w / 2, right = w / 2 + (w % 2) - 1;
  if (causal) {
    int64_t leader = (i / s) * s + s - 1;
    if (leader > L - 1) leader = L - 1;
    *start = leader - left - right;
    if (*start < 0) *start = 0;
    *end = i + 1 < L ? i + 1 : L;
  } else {
    int64_t leader = (i / s) * s + s / 2;
    if (leader > L - 1) leader = L - 1;
    *start = leader - left;
    if (*start < 0) *start = 0;
    if (leader + right >= L) *start += L - right - leader - 1;
    *end = *start + w;
  }
}

// Is coordinate j inside the window [start, end) that neighborhood_window gave coordinate i (dilation d)?
SATTN_HD bool in_neighborhood(int64_t i, int64_t j, int64_t d, int64_t start, int64_t end) {
  if (d > 1 && i % d != j % d) return false;
  const int64_t m = d > 1 ? j / d : j;
  return m >= start && m < end;
}

// GRAT between two grid tokens (coordinates qc, kc).
SATTN_HD bool group_allows(const MaskRule& r, const int64_t qc[3], const int64_t kc[3]) {
  if (!r.criss_cross) {
    for (int a = 0; a < 3; ++a) {
      const int64_t d = qc[a] / r.group[a] - kc[a] / r.group[a];
      if (d > r.radius || -d > r.radius) return false;
    }
    return true;
  }
  // Criss-cross: share the group index on at least one axis that has more than one group.
  bool any_axis = false;
  for (int a = 0; a < 3; ++a) {
    const int64_t groups = (r.tokens.grid[a] + r.group[a] - 1) / r.group[a];
    if (groups <= 1) continue;
    any_axis = true;
    if (qc[a] / r.group[a] == kc[a] / r.group[a]) return true;
  }
  return !any_axis;
}

// The rule seen from one query token q: allows(k) says whether q may attend key token k (natural sequence
// indices). Padded text keys are never attended; text queries (padded ones too) attend every valid key;
// grid queries attend every valid text key plus the grid keys their method allows. What depends on q
// alone (its coordinates, its GNA windows) is computed once, so a caller that tests many keys of one
// query (the CPU block-sparse executor's partial tiles) pays per key only the key's side.
struct QueryRule {
  const MaskRule* r;
  bool q_grid;
  int64_t qc[3] = {0, 0, 0}, start[3] = {0, 0, 0}, end[3] = {0, 0, 0};

  SATTN_HD QueryRule(const MaskRule& rule, int64_t q) : r(&rule), q_grid(rule.tokens.is_grid(q)) {
    if (!q_grid || rule.method == MaskMethod::Dense) return;
    rule.tokens.coords(q, qc);
    if (rule.method == MaskMethod::Neighborhood)
      for (int a = 0; a < 3; ++a)
        neighborhood_window(qc[a], rule.tokens.grid[a], rule.window[a], rule.stride[a], rule.dilation[a],
                            rule.causal[a], &start[a], &end[a]);
  }

  SATTN_HD bool allows(int64_t k) const {
    const TokenLayout& t = r->tokens;
    const bool k_grid = t.is_grid(k);
    if (!k_grid && t.text_index(k) >= t.valid_text()) return false;
    if (!q_grid || !k_grid || r->method == MaskMethod::Dense) return true;
    int64_t kc[3];
    t.coords(k, kc);
    if (r->method == MaskMethod::Group) return group_allows(*r, qc, kc);
    for (int a = 0; a < 3; ++a)
      if (!in_neighborhood(qc[a], kc[a], r->dilation[a], start[a], end[a])) return false;
    return true;
  }
};

// May query token q attend key token k (natural sequence indices)? QueryRule says who may attend whom.
SATTN_HD bool allowed(const MaskRule& r, int64_t q, int64_t k) { return QueryRule(r, q).allows(k); }

}  // namespace sattn
