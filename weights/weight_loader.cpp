// WeightLoader (declared in name_map.h): strict, scoped access to canonical tensors. Problems are
// recorded, construction continues with zero tensors, and finish() reports everything in one error
// (counts plus the first few names), as the design's "aggregate, don't flood" rule asks.
#include <atomic>
#include <cmath>
#include <functional>
#include <map>
#include <mutex>
#include <set>

#include "ops.h"
#include "staged_upload.h"
#include "weights/name_map.h"

namespace weights {

struct WeightLoader::State {
  std::shared_ptr<const MappedStore> store;
  std::string component;
  std::mutex mu;  // loaders built on several threads share one record
  std::set<std::string> requested;
  size_t required = 0;  // get() calls, to tell "nothing found" from "a few missing"
  std::vector<std::string> missing;  // in request order, deduplicated through `requested`
  struct WrongShape {
    std::string name;
    rt::Shape expected, got;
  };
  std::vector<WrongShape> wrong;
  const rt::Context* target = nullptr;  // where tensors go; nullptr = CPU f32
  bool random = false;
  uint64_t seed = 0;
  std::atomic<int64_t> numel{0};
  std::atomic<size_t> bytes{0};
  std::mutex upload_mu;  // one tensor at a time through the staging buffers
  rt::Context host;      // the destination context when no target was given (CPU f32, all cores)
  std::unique_ptr<rt::StagedUpload> upload;  // made by the first tensor read from the checkpoint
  size_t source_bytes = 0;                   // guarded by upload_mu

  rt::Tensor counted(rt::Tensor t) {
    numel += t.numel();
    bytes += t.nbytes();
    return t;
  }

  // The canonical tensor `name` of `shape` on the target in its dtype (CPU f32 without a target).
  rt::Tensor materialize(const MappedStore& store, const std::string& name, const rt::Shape& shape) {
    const rt::Context& ctx = target != nullptr ? *target : host;
    const rt::DType dt = ctx.dtype();
    const std::vector<Piece> pieces = store.pieces(name);
    CHECK(pieces_numel(pieces) == rt::shape_numel(shape), "materialize: ", name, " has ", pieces_numel(pieces),
          " elements, not ", rt::shape_str(shape));
    rt::Tensor out = rt::empty(ctx, shape, dt);
    const size_t es = rt::dtype_size(dt);
    const int threads = ctx.num_threads();
    {
      std::lock_guard<std::mutex> lock(upload_mu);
      if (!upload) upload = std::make_unique<rt::StagedUpload>(ctx);
      upload->write(out, [&](void* dst, size_t offset, size_t n) {
        convert_range(pieces, dt, dst, int64_t(offset / es), int64_t((offset + n) / es), threads);
      });
      for (const Piece& p : pieces) source_bytes += size_t(p.numel) * rt::dtype_size(p.dtype);
    }
    return counted(std::move(out));
  }
};

WeightLoader WeightLoader::random(const rt::Context& ctx, uint64_t seed, std::string component) {
  WeightLoader w;
  w.state_ = std::make_shared<State>();
  w.state_->component = std::move(component);
  w.state_->target = &ctx;
  w.state_->random = true;
  w.state_->seed = seed;
  return w;
}

WeightLoader& WeightLoader::place(const rt::Context& ctx) {
  state_->target = &ctx;
  return *this;
}

int64_t WeightLoader::loaded_numel() const { return state_->numel; }
size_t WeightLoader::loaded_bytes() const { return state_->bytes; }

WeightLoader::LoadStats WeightLoader::load_stats() const {
  std::lock_guard<std::mutex> lock(state_->upload_mu);
  if (!state_->upload) return {};
  const rt::UploadStats& u = state_->upload->stats();
  return {state_->source_bytes, u.produce_seconds, u.wait_seconds};
}

// Random weights: the scale keeps activations of a deep random model finite (bf16 has no headroom for
// growth over 57 blocks), which is all a speed measurement needs.
static rt::Tensor random_tensor(const rt::Context& ctx, uint64_t seed, const std::string& name, const rt::Shape& shape) {
  const uint64_t s = seed * 0x9E3779B97F4A7C15ull ^ std::hash<std::string>{}(name);
  rt::Tensor t = rt::empty(ctx, shape, ctx.dtype());
  const bool is_bias = name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
  if (shape.size() >= 2) {
    const double fan_in = double(rt::shape_numel(shape) / std::max<int64_t>(1, shape[0]));
    const float a = float(1.0 / std::sqrt(std::max(1.0, fan_in)));
    rt::fill_uniform(ctx, t, s, -a, a);
  } else if (is_bias) {
    rt::fill_uniform(ctx, t, s, -0.02f, 0.02f);
  } else {
    rt::fill_uniform(ctx, t, s, 0.9f, 1.1f);
  }
  return t;
}

WeightLoader::WeightLoader(std::shared_ptr<const MappedStore> store, std::string component)
    : state_(std::make_shared<State>()) {
  CHECK(store != nullptr, "WeightLoader needs a store");
  state_->store = std::move(store);
  state_->component = std::move(component);
}

WeightLoader WeightLoader::pp(const std::string& segment) const {
  WeightLoader w = *this;
  w.prefix_ += segment + ".";
  return w;
}

WeightLoader WeightLoader::pp(const std::string& segment, int index) const {
  return pp(segment + "." + std::to_string(index));
}

bool WeightLoader::has(const std::string& name) const { return !state_->random && state_->store->has(prefix_ + name); }

rt::Shape WeightLoader::shape_of(const std::string& name) const {
  const std::string full = prefix_ + name;
  if (state_->random) return {};
  return state_->store->has(full) ? state_->store->shape(full) : rt::Shape{};
}

rt::Tensor WeightLoader::get(const std::string& name, const rt::Shape& shape) const {
  const std::string full = prefix_ + name;
  if (state_->random) return state_->counted(random_tensor(*state_->target, state_->seed, full, shape));
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    ++state_->required;
    const bool first = state_->requested.insert(full).second;
    if (!state_->store->has(full)) {
      if (first) state_->missing.push_back(full);
      return rt::Tensor::zeros(shape);
    }
  }
  return get_optional(name, shape);
}

rt::Tensor WeightLoader::get_optional(const std::string& name, const rt::Shape& shape) const {
  const std::string full = prefix_ + name;
  if (state_->random) return state_->counted(random_tensor(*state_->target, state_->seed, full, shape));
  const MappedStore& store = *state_->store;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->requested.insert(full);
    if (!store.has(full)) return rt::Tensor();
    const rt::Shape got = store.shape(full);
    if (got != shape) {
      state_->wrong.push_back({full, shape, got});
      return rt::Tensor::zeros(shape);
    }
  }
  return state_->materialize(store, full, shape);
}

static constexpr size_t kListMax = 5;

static std::string list_some(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < kListMax; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > kListMax) s += ", ...";
  return s;
}

// The prefix P for which the most unexpected names are P + (a missing name): a checkpoint saved from
// a wrapper module ("model.", "module.", "diffusion_model.") that the layout does not strip.
struct PrefixGuess {
  std::string prefix, example;  // example: a missing name found under the prefix
  size_t count = 0;
};
static PrefixGuess unknown_prefix(const std::vector<std::string>& unexpected, const std::vector<std::string>& missing) {
  const std::set<std::string> want(missing.begin(), missing.end());
  std::map<std::string, PrefixGuess> guesses;
  for (const auto& u : unexpected) {
    for (size_t pos = u.find('.'); pos != std::string::npos; pos = u.find('.', pos + 1)) {
      const std::string rest = u.substr(pos + 1);
      if (!want.count(rest)) continue;
      PrefixGuess& g = guesses[u.substr(0, pos + 1)];
      if (g.count++ == 0) g.example = rest;
    }
  }
  PrefixGuess best;
  for (const auto& [p, g] : guesses) {
    if (g.count > best.count) {
      best = g;
      best.prefix = p;
    }
  }
  return best;
}

rt::Status WeightLoader::finish() const {
  if (state_->random) return rt::Status::ok();
  std::lock_guard<std::mutex> lock(state_->mu);
  const State& s = *state_;
  std::vector<std::string> unexpected;
  for (const auto& n : s.store->names()) {
    if (!s.requested.count(n)) unexpected.push_back(n);
  }
  for (const auto& n : s.store->unmatched_sources()) unexpected.push_back(n);
  if (s.missing.empty() && s.wrong.empty() && unexpected.empty()) return rt::Status::ok();

  std::vector<std::string> parts;
  if (!s.missing.empty()) {
    // Named as the checkpoint's layout spells them, with the canonical name when that differs.
    std::vector<std::string> m;
    for (const auto& x : s.missing) {
      const std::string spelled = s.store->source_spelling(x);
      m.push_back(spelled == x ? x : spelled + " [" + x + "]");
    }
    parts.push_back(std::to_string(s.missing.size()) + " missing (" + list_some(m) + ")");
  }
  if (!s.wrong.empty()) {
    std::vector<std::string> w;
    for (const auto& x : s.wrong) {
      w.push_back(x.name + ": expected " + rt::shape_str(x.expected) + ", got " + rt::shape_str(x.got));
    }
    parts.push_back(std::to_string(s.wrong.size()) + " wrong shape (" + list_some(w) + ")");
  }
  if (!unexpected.empty()) {
    parts.push_back(std::to_string(unexpected.size()) + " unexpected (" + list_some(unexpected) + ")");
  }
  std::string msg = s.component + ": checkpoint does not match the model: ";
  for (size_t i = 0; i < parts.size(); ++i) msg += (i ? ", " : "") + parts[i];

  size_t found = 0;
  for (const auto& n : s.requested) found += s.store->has(n) ? 1 : 0;
  const PrefixGuess g = unknown_prefix(unexpected, s.missing);
  if (g.count > 0 && (g.count >= 2 || g.count == s.missing.size())) {
    msg += "\n  hint: names carry an unknown prefix '" + g.prefix + "' (" + std::to_string(g.count) +
           " unexpected names are missing ones behind it, e.g. '" + g.prefix + g.example +
           "'); the layout's names.cpp should strip_prefix(\"" + g.prefix + "\")";
  } else if (s.required > 0 && found == 0 && !unexpected.empty()) {
    msg += "\n  hint: none of the model's tensors were found; the checkpoint is for another model, or in a layout "
           "this model has no name map for";
  } else if (!s.wrong.empty() && s.missing.empty()) {
    msg += "\n  hint: the names match but shapes differ; the checkpoint may be another variant of this model";
  }
  return rt::Status::error(msg);
}

}  // namespace weights
