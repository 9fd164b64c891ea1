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

// The rule's view of one key token k (natural sequence index): what QueryRule::allows needs of it, so that a
// caller testing one key against many queries (the CPU block-sparse executor's partial tiles) computes it once.
struct KeyRule {
  bool grid = false;  // a grid token, else text
  bool valid = true;  // false: a padded text key, which nobody attends
  // Neighborhood: the key's coordinates (t, h, w); Group: its group index per axis.
  int64_t c[3] = {0, 0, 0};

  SATTN_HD KeyRule(const MaskRule& r, int64_t k) : grid(r.tokens.is_grid(k)) {
    if (!grid) {
      valid = r.tokens.text_index(k) < r.tokens.valid_text();
      return;
    }
    if (r.method == MaskMethod::Dense) return;
    r.tokens.coords(k, c);
    if (r.method == MaskMethod::Group)
      for (int a = 0; a < 3; ++a) c[a] /= r.group[a];
  }
};

// The rule seen from one query token q: allows(k) says whether q may attend key token k (natural sequence
// indices). Padded text keys are never attended; text queries (padded ones too) attend every valid key;
// grid queries attend every valid text key plus the grid keys their method allows:
//  - Neighborhood (GNA): on every axis, the key inside the query's window (neighborhood_window);
//  - Group (GRAT) variant B: on every axis, group indices at most `radius` apart;
//  - Group variant X (criss-cross): the same group index on at least one axis that has more than one group
//    (every key when no axis has).
// What depends on q alone (its coordinates or groups, its GNA windows) is computed once.
struct QueryRule {
  const MaskRule* r;
  bool q_grid;
  // Neighborhood: q's coordinates and its window [start, end) per axis; Group: q's group index per axis.
  int64_t qc[3] = {0, 0, 0}, start[3] = {0, 0, 0}, end[3] = {0, 0, 0};
  bool multi[3] = {false, false, false};  // Group X: the axes with more than one group
  bool any_multi = false;

  SATTN_HD QueryRule(const MaskRule& rule, int64_t q) : r(&rule), q_grid(rule.tokens.is_grid(q)) {
    if (!q_grid || rule.method == MaskMethod::Dense) return;
    rule.tokens.coords(q, qc);
    if (rule.method == MaskMethod::Group) {
      for (int a = 0; a < 3; ++a) {
        qc[a] /= rule.group[a];
        multi[a] = (rule.tokens.grid[a] + rule.group[a] - 1) / rule.group[a] > 1;
        any_multi = any_multi || multi[a];
      }
      return;
    }
    for (int a = 0; a < 3; ++a)
      neighborhood_window(qc[a], rule.tokens.grid[a], rule.window[a], rule.stride[a], rule.dilation[a],
                          rule.causal[a], &start[a], &end[a]);
  }

  SATTN_HD bool allows(const KeyRule& k) const {
    if (!k.valid) return false;
    if (!q_grid || !k.grid || r->method == MaskMethod::Dense) return true;
    if (r->method == MaskMethod::Group) {
      if (r->criss_cross) {
        for (int a = 0; a < 3; ++a)
          if (multi[a] && qc[a] == k.c[a]) return true;
        return !any_multi;
      }
      for (int a = 0; a < 3; ++a) {
        const int64_t d = qc[a] - k.c[a];
        if (d > r->radius || -d > r->radius) return false;
      }
      return true;
    }
    for (int a = 0; a < 3; ++a)
      if (!in_neighborhood(qc[a], k.c[a], r->dilation[a], start[a], end[a])) return false;
    return true;
  }
  SATTN_HD bool allows(int64_t k) const { return allows(KeyRule(*r, k)); }
};

// May query token q attend key token k (natural sequence indices)? QueryRule says who may attend whom.
SATTN_HD bool allowed(const MaskRule& r, int64_t q, int64_t k) { return QueryRule(r, q).allows(k); }

}  // namespace sattn
