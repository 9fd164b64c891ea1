// Name maps: from a checkpoint layout's tensor names to the canonical names model code asks for,
// with the load-time transforms layouts need (row concatenation of split q/k/v, swapped halves,
// reshapes such as a 1x1 conv weight [C, C, 1, 1] <-> a linear weight [C, C]).
//
// Patterns are literal names in which "{i}", "{j}", "{k}" stand for non-negative integers; the
// values captured in `from` are substituted into `to`. Index arithmetic (e.g. the VAE's reversed
// up-block order) is done by generating literal rules in a loop in the model's names.cpp.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "context.h"
#include "convert.h"
#include "store.h"

namespace weights {

enum class Transform {
  None,        // one source, renamed
  ConcatRows,  // several sources concatenated along dim 0, in the order given
  SwapHalves,  // one source; its two halves along dim 0 exchanged
  Reshape,     // one source; reshaped to `shape` (same numel)
};

struct Rule {
  std::vector<std::string> from;
  std::string to;
  Transform transform = Transform::None;
  rt::Shape shape;  // Reshape only
};

class NameMap {
 public:
  // A prefix removed from every source name that carries it (e.g. "model.diffusion_model.").
  NameMap& strip_prefix(std::string prefix);
  NameMap& rename(std::string from, std::string to);
  NameMap& concat_rows(std::vector<std::string> from, std::string to);
  NameMap& swap_halves(std::string from, std::string to);
  NameMap& reshape(std::string from, std::string to, rt::Shape shape);
  // Source names matching this pattern are known and deliberately unused (e.g. "text_projection.weight").
  NameMap& ignore(std::string pattern);
  // Any source name no rule matches maps to itself (for layouts that already use canonical names).
  NameMap& identity_fallback(bool on = true);

  const std::vector<Rule>& rules() const { return rules_; }
  const std::vector<std::string>& prefixes() const { return prefixes_; }
  const std::vector<std::string>& ignored() const { return ignored_; }
  bool has_identity_fallback() const { return identity_; }

 private:
  std::vector<Rule> rules_;
  std::vector<std::string> prefixes_;
  std::vector<std::string> ignored_;
  bool identity_ = false;
};

// True when `name` matches `pattern`; captured integers go to *captures ({i}, {j}, {k} order of appearance).
bool match_pattern(const std::string& pattern, const std::string& name, std::vector<std::string>* captures);

// A store seen through a name map: canonical name -> how to build it from source tensors.
class MappedStore {
 public:
  // Fails when two rules produce the same canonical name or a multi-source rule has only some of
  // its sources present (names the rule and what is missing).
  static rt::Result<std::shared_ptr<MappedStore>> create(TensorStore store, const NameMap& map);

  std::vector<std::string> names() const;  // canonical, sorted
  bool has(const std::string& canonical) const;
  rt::Shape shape(const std::string& canonical) const;  // after the transform
  rt::DType stored_dtype(const std::string& canonical) const;
  // The canonical tensor's elements, row-major, as runs of the mapped files' bytes in their stored
  // dtype: the transforms are an order of runs (concatenated sources, the two halves swapped), so
  // nothing is read or copied until a caller converts them (convert_range). Valid while this store lives.
  std::vector<Piece> pieces(const std::string& canonical) const;
  // An owned f32 copy (the pieces converted on all hardware threads).
  rt::Tensor load_f32(const std::string& canonical) const;
  // Source names no rule matched and no ignore pattern covers: "unexpected" tensors.
  const std::vector<std::string>& unmatched_sources() const { return unmatched_; }
  const TensorStore& source() const { return store_; }
  // How `canonical` would be spelled in this checkpoint's layout ("a + b" for concatenated sources),
  // for messages about tensors that are absent. The canonical name itself when no rule makes it.
  std::string source_spelling(const std::string& canonical) const;

 private:
  struct Recipe {
    std::vector<std::string> sources;
    Transform transform = Transform::None;
    rt::Shape shape;
  };
  TensorStore store_;
  std::map<std::string, Recipe> recipes_;
  std::vector<std::string> unmatched_;
  std::vector<Rule> rules_;
};

// Strict, scoped weight accessor (candle's VarBuilder idea). Models ask for canonical names with the
// shape they expect; everything wrong is collected and reported once by finish(), never as warnings.
class WeightLoader {
 public:
  explicit WeightLoader(std::shared_ptr<const MappedStore> store, std::string component = "model");
  // A loader without a checkpoint: every get() returns seeded random values (uniform ±1/√fan_in for
  // matrices, 1 ± 0.1 for norm scales, ±0.02 for biases), made on the context's device in its dtype, the
  // same numbers on every device. For benchmarks of full-size models nobody has to download.
  static WeightLoader random(const rt::Context& ctx, uint64_t seed, std::string component);
  // Tensors come back on ctx's device in ctx's float dtype (default: CPU f32). ctx must outlive loading.
  WeightLoader& place(const rt::Context& ctx);
  // A loader whose names are prefixed with `segment` + "." (nested calls accumulate).
  WeightLoader pp(const std::string& segment) const;
  WeightLoader pp(const std::string& segment, int index) const;  // "segment.index"

  // Tensor of exactly `shape` (f32 on the CPU, or as placed). When missing or of another shape the problem is recorded and
  // a zero tensor of `shape` is returned so construction can continue and report everything.
  rt::Tensor get(const std::string& name, const rt::Shape& shape) const;
  // Undefined tensor when absent (for tensors a model declares optional, e.g. biases of some layouts).
  rt::Tensor get_optional(const std::string& name, const rt::Shape& shape) const;
  bool has(const std::string& name) const;
  // Shape of a present tensor (for inferring dimensions), or an empty shape when absent.
  rt::Shape shape_of(const std::string& name) const;
  // Elements and bytes of the tensors handed out so far by this loader and its pp() copies, as placed
  // (the target device's dtype), for load reports.
  int64_t loaded_numel() const;
  size_t loaded_bytes() const;
  // Where a checkpoint load spent its time (all zero for random weights). Tensors are read from the
  // mapped files and converted only where the stored dtype differs from the target's, on the context's
  // threads, straight into the destination (CPU) or into pinned staging chunks copied asynchronously
  // on the context's stream (GPU; rt::StagedUpload).
  struct LoadStats {
    size_t source_bytes = 0;    // checkpoint bytes read (stored dtype)
    double host_seconds = 0;    // reading and converting on the host
    double wait_seconds = 0;    // waiting for host-to-device copies to free a staging buffer
  };
  LoadStats load_stats() const;

  // Error listing counts and the first few names of: missing, wrong-shaped (expected vs got), and
  // unexpected tensors (present in the checkpoint, never asked for). Adds a hint when the names look
  // like another layout or carry an unknown prefix.
  rt::Status finish() const;

 private:
  struct State;
  WeightLoader() = default;
  std::shared_ptr<State> state_;
  std::string prefix_;
};

}  // namespace weights
