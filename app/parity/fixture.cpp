#include "app/parity/fixture.h"

#include <vector>

#include "app/parity/runners.h"

namespace app {

rt::Result<ParityFixture> load_parity_fixture(const std::string& path) {
  RT_ASSIGN(weights::TensorStore store, weights::TensorStore::open(path));
  ParityFixture f;
  f.path = path;
  const auto& meta = store.metadata();
  auto get = [&](const char* key) -> std::string {
    auto it = meta.find(key);
    return it == meta.end() ? std::string() : it->second;
  };
  f.module = get("module");
  if (f.module.empty())
    return rt::Status::error(path + ": not a parity fixture: metadata has no 'module' key (expected one of: " +
                             known_parity_modules() + ")");
  const std::string config = get("config");
  try {
    f.config = config.empty() ? nlohmann::json::object() : nlohmann::json::parse(config);
  } catch (const std::exception& e) {
    return rt::Status::error(path + ": metadata 'config' is not valid JSON: " + e.what());
  }
  if (!f.config.is_object()) return rt::Status::error(path + ": metadata 'config' must be a JSON object");
  f.weights_format = get("weights_format");
  if (f.weights_format.empty()) f.weights_format = "diffusers";
  if (f.weights_format != "diffusers" && f.weights_format != "bfl")
    return rt::Status::error(path + ": weights_format '" + f.weights_format + "' is unknown (expected diffusers or bfl)");
  if (const std::string tol = get("tolerance_rel"); !tol.empty()) {
    try {
      f.tolerance = std::stod(tol);
    } catch (...) {
      return rt::Status::error(path + ": tolerance_rel '" + tol + "' is not a number");
    }
  }
  f.weights = store.with_prefix("weight.");
  for (const std::string& name : store.names()) {
    const bool is_input = name.rfind("input.", 0) == 0, is_output = name.rfind("output.", 0) == 0;
    if (!is_input && !is_output) continue;
    rt::Tensor t = store.load(name);
    t = t.dtype() == rt::DType::I64 ? t.contiguous() : t.to(rt::DType::F32);
    (is_input ? f.inputs : f.expected)[name.substr(is_input ? 6 : 7)] = t;
  }
  if (f.expected.empty()) return rt::Status::error(path + ": fixture has no 'output.*' tensors");
  return f;
}

rt::Result<rt::Tensor> fixture_input(const ParityFixture& f, const std::string& name) {
  auto it = f.inputs.find(name);
  if (it == f.inputs.end())
    return rt::Status::error(f.path + ": module '" + f.module + "' needs tensor 'input." + name + "', which is missing");
  return it->second;
}

namespace {
struct Entry {
  const char* module;
  ParityRunner runner;
};
const std::vector<Entry>& table() {
  static const std::vector<Entry> kTable = {
      {"flux_transformer", parity::run_flux_transformer},
      {"t5_encoder", parity::run_t5_encoder},
      {"clip_text_encoder", parity::run_clip_text_encoder},
      {"flux_vae_decoder", parity::run_flux_vae_decoder},
      {"flow_match_schedule", parity::run_flow_match_schedule},
      {"flux_denoise", parity::run_flux_denoise},
      {"attention", parity::run_attention},
  };
  return kTable;
}
}  // namespace

const ParityRunner* find_parity_runner(const std::string& module) {
  for (const Entry& e : table())
    if (module == e.module) return &e.runner;
  return nullptr;
}

std::string known_parity_modules() {
  std::string s;
  for (const Entry& e : table()) s += (s.empty() ? "" : ", ") + std::string(e.module);
  return s;
}

}  // namespace app
