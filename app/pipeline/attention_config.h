// Attention config files (`--attention-config FILE.json`; sparse_attention/README.md, "Attention config
// files"): the Flux transformer's attention policy per layer and step as JSON, every key optional:
//   {"method": "gna:window=1x16x16,stride=1x8x8", "dense_steps": 4, "dense_layers": [0, 5],
//    "layers": {"3": "grat:variant=B,group=1x8x8,radius=1"}}
// Layer indices count double blocks first, then single blocks. Checks that need the model (layer indices
// in range: AttentionPolicy::layer_error) or the image (methods that do not fit the token grid:
// attention_fit_errors) come after the model loads.
#pragma once
#include <string>
#include <vector>

#include "base/status.h"
#include "dit/flux/attention_policy.h"

namespace app {

struct AttentionConfig {
  std::string name;  // the file, for messages
  dit::flux::AttentionPolicy policy;
  bool has_method = false, has_dense_steps = false, has_dense_layers = false;  // keys present in the file
};

// The config in `text`; errors name `name`, the key and what is expected (bad JSON, unknown keys, wrong
// types, method spellings, negative or repeated layers, a layer both in dense_layers and layers).
rt::Result<AttentionConfig> parse_attention_config(const std::string& text, const std::string& name);
// The same for a file (an unreadable file is an error naming it).
rt::Result<AttentionConfig> load_attention_config(const std::string& path);

// One method of a policy and where the user wrote it ("--attention gna:...", "FILE: layers \"3\"").
struct LabeledMethod {
  std::string label;
  sattn::MethodSpec method;
};
// "" when every method fits a width x height image with text_len tokens, else "<label> does not fit ...".
std::string attention_fit_errors(const std::vector<LabeledMethod>& methods, int64_t width, int64_t height,
                                 int64_t text_len);

}  // namespace app
