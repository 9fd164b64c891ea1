// Component configurations as loading builds them: dimensions from tensor shapes, with the
// component's config.json (when there is one) supplying what shapes cannot show. Shared by the
// pipeline and `inspect`, so what inspect prints is what generate would build.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "dit/flux/config.h"
#include "text_encoder/clip/config.h"
#include "text_encoder/t5/config.h"
#include "vae/flux/config.h"

namespace app {

rt::Result<nlohmann::json> read_json(const std::string& path);

// `config_json` is a path or "" when the component has none.
rt::Result<dit::flux::Config> flux_transformer_config(const weights::MappedStore& store, const std::string& config_json);
rt::Result<vae::flux::Config> flux_vae_config(const weights::MappedStore& store, const std::string& config_json);
rt::Result<te::t5::Config> t5_config(const weights::MappedStore& store, const std::string& config_json);
rt::Result<te::clip::Config> clip_config(const weights::MappedStore& store, const std::string& config_json);

}  // namespace app
