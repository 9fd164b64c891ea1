// Name-map engine: pattern matching with integer captures, and MappedStore, which resolves every
// source tensor of a checkpoint to a canonical name plus a load-time transform. Rules are data
// written in each model's names.cpp; nothing here knows a model.
#include "weights/name_map.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <thread>

namespace weights {

using rt::Status;
using Captures = std::map<char, std::string>;  // placeholder letter -> digits

static bool placeholder_at(const std::string& p, size_t i, char* letter) {
  if (i + 2 < p.size() && p[i] == '{' && p[i + 2] == '}' && std::strchr("ijk", p[i + 1]) != nullptr) {
    *letter = p[i + 1];
    return true;
  }
  return false;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Backtracking over the digit run length, so a placeholder followed by a digit literal still matches.
// A letter used twice in one pattern must capture the same digits both times.
static bool match_from(const std::string& p, size_t pi, const std::string& n, size_t ni, Captures* caps,
                       std::vector<char>* order) {
  while (pi < p.size()) {
    char letter = 0;
    if (placeholder_at(p, pi, &letter)) {
      auto bound = caps->find(letter);
      if (bound != caps->end()) {
        if (n.compare(ni, bound->second.size(), bound->second) != 0) return false;
        ni += bound->second.size();
        pi += 3;
        continue;
      }
      size_t run = 0;
      while (ni + run < n.size() && is_digit(n[ni + run])) ++run;
      for (size_t len = run; len >= 1; --len) {
        (*caps)[letter] = n.substr(ni, len);
        order->push_back(letter);
        if (match_from(p, pi + 3, n, ni + len, caps, order)) return true;
        order->pop_back();
        caps->erase(letter);
      }
      return false;
    }
    if (ni >= n.size() || p[pi] != n[ni]) return false;
    ++pi;
    ++ni;
  }
  return ni == n.size();
}

static bool match_named(const std::string& pattern, const std::string& name, Captures* caps,
                        std::vector<char>* order = nullptr) {
  std::vector<char> local;
  caps->clear();
  return match_from(pattern, 0, name, 0, caps, order ? order : &local);
}

bool match_pattern(const std::string& pattern, const std::string& name, std::vector<std::string>* captures) {
  Captures caps;
  std::vector<char> order;
  if (!match_named(pattern, name, &caps, &order)) return false;
  if (captures) {
    captures->clear();
    for (char c : order) captures->push_back(caps.at(c));
  }
  return true;
}

static std::string substitute(const std::string& pattern, const Captures& caps) {
  std::string out;
  for (size_t i = 0; i < pattern.size();) {
    char letter = 0;
    if (placeholder_at(pattern, i, &letter)) {
      auto it = caps.find(letter);
      CHECK(it != caps.end(), "pattern '", pattern, "' uses {", letter, "}, which its rule never captures");
      out += it->second;
      i += 3;
    } else {
      out += pattern[i++];
    }
  }
  return out;
}

static std::set<char> letters_of(const std::string& pattern) {
  std::set<char> out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char letter = 0;
    if (placeholder_at(pattern, i, &letter)) out.insert(letter);
  }
  return out;
}

// Rules are written by hand in names.cpp; a placeholder the key pattern does not capture is a bug there.
static void check_rule(const Rule& r) {
  CHECK(!r.from.empty(), "rule for '", r.to, "' has no source pattern");
  const std::set<char> have = letters_of(r.from[0]);
  std::vector<std::string> others(r.from.begin() + 1, r.from.end());
  others.push_back(r.to);
  for (const auto& p : others) {
    for (char c : letters_of(p)) {
      CHECK(have.count(c), "rule '", r.from[0], "' -> '", r.to, "': pattern '", p, "' uses {", c,
            "} that the first source pattern does not capture");
    }
  }
  for (int64_t d : r.shape) CHECK(d >= 0, "rule '", r.from[0], "': negative dimension in reshape target ", rt::shape_str(r.shape));
}

NameMap& NameMap::strip_prefix(std::string prefix) {
  prefixes_.push_back(std::move(prefix));
  return *this;
}
NameMap& NameMap::rename(std::string from, std::string to) {
  rules_.push_back(Rule{{std::move(from)}, std::move(to), Transform::None, {}});
  check_rule(rules_.back());
  return *this;
}
NameMap& NameMap::concat_rows(std::vector<std::string> from, std::string to) {
  rules_.push_back(Rule{std::move(from), std::move(to), Transform::ConcatRows, {}});
  check_rule(rules_.back());
  return *this;
}
NameMap& NameMap::swap_halves(std::string from, std::string to) {
  rules_.push_back(Rule{{std::move(from)}, std::move(to), Transform::SwapHalves, {}});
  check_rule(rules_.back());
  return *this;
}
NameMap& NameMap::reshape(std::string from, std::string to, rt::Shape shape) {
  rules_.push_back(Rule{{std::move(from)}, std::move(to), Transform::Reshape, std::move(shape)});
  check_rule(rules_.back());
  return *this;
}
NameMap& NameMap::ignore(std::string pattern) {
  ignored_.push_back(std::move(pattern));
  return *this;
}
NameMap& NameMap::identity_fallback(bool on) {
  identity_ = on;
  return *this;
}

static std::string rule_str(const Rule& r) {
  std::string s = "[";
  for (size_t i = 0; i < r.from.size(); ++i) s += (i ? ", " : "") + r.from[i];
  return s + "] -> " + r.to;
}

// Shape constraints of the transforms, checked before anything is loaded: the checkpoint is user input.
static Status validate_recipe(const std::string& canonical, const std::vector<std::string>& sources,
                              Transform tr, const rt::Shape& target, const TensorStore& store) {
  const rt::Shape& s0 = store.info(sources[0]).shape;
  switch (tr) {
    case Transform::None: return Status::ok();
    case Transform::ConcatRows:
      for (const auto& src : sources) {
        const rt::Shape& s = store.info(src).shape;
        if (s.empty() || s.size() != s0.size() || !std::equal(s.begin() + 1, s.end(), s0.begin() + 1)) {
          return Status::error(canonical + ": cannot concatenate rows of " + sources[0] + " " + rt::shape_str(s0) +
                               " and " + src + " " + rt::shape_str(s) + " (all dims but the first must agree)");
        }
      }
      return Status::ok();
    case Transform::SwapHalves:
      if (s0.empty() || s0[0] % 2 != 0) {
        return Status::error(canonical + ": cannot swap halves of " + sources[0] + " " + rt::shape_str(s0) +
                             " (dim 0 must be even)");
      }
      return Status::ok();
    case Transform::Reshape:
      if (rt::shape_numel(target) != rt::shape_numel(s0)) {
        return Status::error(canonical + ": cannot reshape " + sources[0] + " " + rt::shape_str(s0) + " to " +
                             rt::shape_str(target) + " (element counts differ)");
      }
      return Status::ok();
  }
  return Status::ok();
}

static bool matches_any(const std::vector<std::string>& patterns, const std::string& name) {
  Captures c;
  for (const auto& p : patterns) {
    if (match_named(p, name, &c)) return true;
  }
  return false;
}

namespace {
// Collects every problem of one create() call so the user sees them all at once.
struct Problems {
  std::vector<std::string> list;
  void add(std::string s) { list.push_back(std::move(s)); }
  Status status(const std::string& source) const {
    if (list.empty()) return Status::ok();
    std::string msg = source + ": " + std::to_string(list.size()) + " name-map problem(s):";
    for (size_t i = 0; i < list.size() && i < 10; ++i) msg += "\n  " + list[i];
    if (list.size() > 10) msg += "\n  ... (" + std::to_string(list.size() - 10) + " more)";
    return Status::error(msg);
  }
};
}  // namespace

rt::Result<std::shared_ptr<MappedStore>> MappedStore::create(TensorStore store, const NameMap& map) {
  auto ms = std::make_shared<MappedStore>();
  Problems problems;

  // Stripped name -> name in the file; the first listed prefix that fits is removed.
  std::map<std::string, std::string> by_stripped;
  for (const auto& name : store.names()) {
    std::string s = name;
    for (const auto& p : map.prefixes()) {
      if (name.compare(0, p.size(), p) == 0) {
        s = name.substr(p.size());
        break;
      }
    }
    auto [it, inserted] = by_stripped.emplace(s, name);
    if (!inserted) problems.add("'" + it->second + "' and '" + name + "' both become '" + s + "' after prefix stripping");
  }

  std::map<std::string, std::string> producer;  // canonical -> what made it, for collision messages
  std::set<std::string> consumed;                // stripped names some recipe reads
  std::set<std::string> partial_reported;        // "rule@first source", so a partial set is reported once
  auto add_recipe = [&](const std::string& canonical, Recipe r, const std::string& what) {
    auto [it, inserted] = producer.emplace(canonical, what);
    if (!inserted) {
      problems.add("two rules produce '" + canonical + "': " + it->second + " and " + what);
      return;
    }
    Status st = validate_recipe(canonical, r.sources, r.transform, r.shape, store);
    if (!st.is_ok()) problems.add(st.message());
    ms->recipes_.emplace(canonical, std::move(r));
  };

  // Pass 1: each rule is keyed by its first source pattern; other sources are found by substitution.
  for (const auto& [s, orig] : by_stripped) {
    if (matches_any(map.ignored(), s)) continue;
    for (const Rule& rule : map.rules()) {
      Captures caps;
      if (!match_named(rule.from[0], s, &caps)) continue;
      Recipe r{{orig}, rule.transform, rule.shape};
      std::vector<std::string> missing;
      for (size_t k = 1; k < rule.from.size(); ++k) {
        const std::string want = substitute(rule.from[k], caps);
        auto it = by_stripped.find(want);
        if (it == by_stripped.end()) missing.push_back(want);
        else r.sources.push_back(it->second);
      }
      consumed.insert(s);
      if (!missing.empty()) {
        std::string m;
        for (const auto& x : missing) m += (m.empty() ? "" : ", ") + x;
        problems.add("rule " + rule_str(rule) + " found " + s + " but not " + m);
        partial_reported.insert(rule_str(rule) + "@" + s);
        break;
      }
      for (size_t k = 1; k < rule.from.size(); ++k) consumed.insert(substitute(rule.from[k], caps));
      add_recipe(substitute(rule.to, caps), std::move(r), "rule " + rule_str(rule) + " on " + orig);
      break;
    }
  }

  // Pass 2: what no rule consumed. A later source of a multi-source rule whose first source is absent
  // is a partial set (an error); then ignore patterns, the identity fallback, or "unexpected".
  for (const auto& [s, orig] : by_stripped) {
    if (consumed.count(s) || matches_any(map.ignored(), s)) continue;
    bool partial = false;
    for (const Rule& rule : map.rules()) {
      for (size_t k = 1; k < rule.from.size() && !partial; ++k) {
        Captures caps;
        if (!match_named(rule.from[k], s, &caps) || letters_of(rule.from[0]) != letters_of(rule.from[k])) continue;
        std::string m;
        for (const auto& p : rule.from) {
          const std::string want = substitute(p, caps);
          if (!by_stripped.count(want)) m += (m.empty() ? "" : ", ") + want;
        }
        if (m.empty()) continue;  // all present: the first source went to an earlier rule; s is unexpected
        partial = true;
        if (partial_reported.insert(rule_str(rule) + "@" + substitute(rule.from[0], caps)).second) {
          problems.add("rule " + rule_str(rule) + " found " + s + " but not " + m);
        }
      }
      if (partial) break;
    }
    if (partial) continue;
    if (map.has_identity_fallback()) add_recipe(s, Recipe{{orig}, Transform::None, {}}, "identity on " + orig);
    else ms->unmatched_.push_back(orig);
  }

  RT_TRY(problems.status(store.source()));
  ms->store_ = std::move(store);
  ms->rules_ = map.rules();
  return ms;
}

std::string MappedStore::source_spelling(const std::string& canonical) const {
  for (const Rule& rule : rules_) {
    Captures caps;
    if (!match_named(rule.to, canonical, &caps)) continue;
    std::string out;
    for (const auto& f : rule.from) out += (out.empty() ? "" : " + ") + substitute(f, caps);
    return out;
  }
  return canonical;
}

std::vector<std::string> MappedStore::names() const {
  std::vector<std::string> out;
  out.reserve(recipes_.size());
  for (const auto& kv : recipes_) out.push_back(kv.first);
  return out;
}

bool MappedStore::has(const std::string& canonical) const { return recipes_.count(canonical) != 0; }

static const auto& find_recipe(const auto& recipes, const std::string& canonical, const TensorStore& store) {
  auto it = recipes.find(canonical);
  CHECK(it != recipes.end(), "MappedStore: no canonical tensor '", canonical, "' in ", store.source());
  return it->second;
}

rt::Shape MappedStore::shape(const std::string& canonical) const {
  const Recipe& r = find_recipe(recipes_, canonical, store_);
  rt::Shape s = store_.info(r.sources[0]).shape;
  if (r.transform == Transform::Reshape) return r.shape;
  if (r.transform == Transform::ConcatRows) {
    for (size_t k = 1; k < r.sources.size(); ++k) s[0] += store_.info(r.sources[k]).shape[0];
  }
  return s;
}

rt::DType MappedStore::stored_dtype(const std::string& canonical) const {
  return store_.info(find_recipe(recipes_, canonical, store_).sources[0]).dtype;
}

std::vector<Piece> MappedStore::pieces(const std::string& canonical) const {
  const Recipe& r = find_recipe(recipes_, canonical, store_);
  std::vector<Piece> out;
  for (const auto& src : r.sources) {
    const rt::Tensor t = store_.load(src);
    out.push_back({t.raw_data(), t.dtype(), t.numel()});
  }
  if (r.transform == Transform::SwapHalves) {
    // dim 0 is even (checked when the recipe was made), so the halves are whole rows.
    const Piece whole = out[0];
    const int64_t half = whole.numel / 2;
    const auto* base = static_cast<const char*>(whole.data);
    out = {{base + size_t(half) * rt::dtype_size(whole.dtype), whole.dtype, half}, {base, whole.dtype, half}};
  }
  return out;
}

rt::Tensor MappedStore::load_f32(const std::string& canonical) const {
  const std::vector<Piece> p = pieces(canonical);
  rt::Tensor out = rt::Tensor::empty(shape(canonical));
  convert_range(p, rt::DType::F32, out.raw_data(), 0, out.numel(), int(std::max(1u, std::thread::hardware_concurrency())));
  return out;
}

}  // namespace weights
