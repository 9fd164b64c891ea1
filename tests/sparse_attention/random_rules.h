// Random small structured-attention rules for the sparse_attention tests: grids of 1 to 3 axes, text
// before or after with padding, and valid GNA / GRAT parameters (rule_error() accepts every rule).
#pragma once
#include <algorithm>
#include <random>
#include <sstream>
#include <string>

#include "sparse_attention/mask_rule.h"

namespace test {

inline int64_t pick(std::mt19937& rng, int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }

inline sattn::MaskRule random_tokens(std::mt19937& rng, int dims) {
  sattn::MaskRule r;
  r.tokens.grid[0] = dims == 3 ? pick(rng, 1, 5) : 1;
  r.tokens.grid[1] = dims >= 2 ? pick(rng, 1, 7) : 1;
  r.tokens.grid[2] = pick(rng, 1, dims == 1 ? 20 : 8);
  r.tokens.text_len = pick(rng, 0, 1) ? pick(rng, 1, 9) : 0;
  r.tokens.text_before = pick(rng, 0, 1) == 1;
  r.tokens.text_valid = r.tokens.text_len ? pick(rng, -1, r.tokens.text_len) : -1;
  return r;
}

inline void random_gna(std::mt19937& rng, sattn::MaskRule* r) {
  r->method = sattn::MaskMethod::Neighborhood;
  for (int a = 0; a < 3; ++a) {
    const int64_t len = r->tokens.grid[a];
    r->dilation[a] = pick(rng, 0, 2) == 0 ? pick(rng, 1, std::max<int64_t>(1, len / 2)) : 1;
    r->window[a] = pick(rng, 1, len / r->dilation[a]);
    r->stride[a] = pick(rng, 1, r->window[a]);
    r->causal[a] = pick(rng, 0, 3) == 0;
  }
}

inline void random_grat(std::mt19937& rng, sattn::MaskRule* r) {
  r->method = sattn::MaskMethod::Group;
  for (int a = 0; a < 3; ++a) r->group[a] = pick(rng, 1, r->tokens.grid[a] + 1);
  r->radius = pick(rng, 0, 2);
  r->criss_cross = pick(rng, 0, 1) == 1;
}

// Case i of a mixed sequence: 1-, 2- and 3-D grids; dense, gna and grat rules.
inline sattn::MaskRule random_rule(std::mt19937& rng, int i) {
  sattn::MaskRule r = random_tokens(rng, 1 + i % 3);
  const int kind = i % 5;
  if (kind == 1 || kind == 3) random_gna(rng, &r);
  if (kind == 2 || kind == 4) random_grat(rng, &r);
  return r;
}

inline std::string describe(const sattn::MaskRule& r) {
  std::ostringstream s;
  auto axes = [&](const int64_t* v) { s << v[0] << "x" << v[1] << "x" << v[2]; };
  s << "grid ";
  axes(r.tokens.grid);
  s << " text " << r.tokens.text_len << (r.tokens.text_before ? " before" : " after") << " valid " << r.tokens.text_valid
    << " method " << int(r.method) << " window ";
  axes(r.window);
  s << " stride ";
  axes(r.stride);
  s << " dilation ";
  axes(r.dilation);
  s << " causal " << r.causal[0] << r.causal[1] << r.causal[2] << " group ";
  axes(r.group);
  s << " radius " << r.radius << " X " << r.criss_cross;
  return s.str();
}

}  // namespace test
