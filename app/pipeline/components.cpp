#include "app/pipeline/components.h"

#include <fstream>
#include <optional>

namespace app {

rt::Result<nlohmann::json> read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return rt::Status::error(path + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    return rt::Status::error(path + ": invalid JSON: " + e.what());
  }
}

rt::Result<dit::flux::Config> flux_transformer_config(const weights::MappedStore& store, const std::string& config_json) {
  std::optional<nlohmann::json> json;
  if (!config_json.empty()) {
    RT_ASSIGN(json, read_json(config_json));
  }
  return dit::flux::Config::from_checkpoint(store, json ? &*json : nullptr);
}

rt::Result<vae::flux::Config> flux_vae_config(const weights::MappedStore& store, const std::string& config_json) {
  vae::flux::Config base = vae::flux::Config::flux1();
  if (!config_json.empty()) {
    RT_ASSIGN(nlohmann::json json, read_json(config_json));
    RT_ASSIGN(base, vae::flux::Config::from_diffusers_json(json));
  }
  return vae::flux::Config::from_checkpoint(store, base);
}

rt::Result<te::t5::Config> t5_config(const weights::MappedStore& store, const std::string& config_json) {
  if (config_json.empty()) return te::t5::Config::from_checkpoint(store);
  RT_ASSIGN(nlohmann::json json, read_json(config_json));
  return te::t5::Config::from_transformers_json(json);
}

rt::Result<te::clip::Config> clip_config(const weights::MappedStore& store, const std::string& config_json) {
  if (config_json.empty()) return te::clip::Config::from_checkpoint(store);
  RT_ASSIGN(nlohmann::json json, read_json(config_json));
  return te::clip::Config::from_transformers_json(json);
}

}  // namespace app
