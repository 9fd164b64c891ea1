// Parity fixtures (../shared/docs/parity-fixtures.md): one .safetensors file holding a module's
// weights (`weight.<key>`), inputs (`input.<name>`) and expected outputs (`output.<name>`), with the
// module name, its reference config and the weight layout in the metadata.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "context.h"
#include "weights/store.h"

namespace app {

struct ParityFixture {
  std::string path;
  std::string module;
  nlohmann::json config;       // the reference class's config, as stored
  std::string weights_format;  // "diffusers" or "bfl"
  double tolerance = 1e-4;     // relative L2 per output
  weights::TensorStore weights;                  // "weight." stripped; same handling as a checkpoint
  std::map<std::string, rt::Tensor> inputs;     // "input." stripped; float inputs as f32, ints as i64
  std::map<std::string, rt::Tensor> expected;   // "output." stripped, f32
};

rt::Result<ParityFixture> load_parity_fixture(const std::string& path);

// Runs the module on the fixture's inputs and returns its outputs by name.
using ParityOutputs = std::map<std::string, rt::Tensor>;
using ParityRunner = std::function<rt::Result<ParityOutputs>(const rt::Context&, const ParityFixture&)>;

// The runner for a module name, or nullptr when ditrun does not know it.
const ParityRunner* find_parity_runner(const std::string& module);
std::string known_parity_modules();  // "a, b, c" for messages

// Fetches a required input, or an error naming the fixture and the missing input.
rt::Result<rt::Tensor> fixture_input(const ParityFixture& f, const std::string& name);

}  // namespace app
