// `ditrun inspect PATH`: what a checkpoint (file, sharded set, or diffusers folder) holds.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "app/commands/commands.h"
#include "app/commands/exit_codes.h"
#include "app/pipeline/detect.h"
#include "app/pipeline/components.h"
#include "dit/flux/names.h"
#include "vae/flux/names.h"

namespace app {

namespace {

namespace fs = std::filesystem;

struct InspectOptions {
  std::string path;
  bool tensors = false;
};

std::string human_bytes(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", b, units[u]);
  return buf;
}

// The dimensions generate would build the model with (shapes plus config.json, as loading does).
std::string inferred_config(const weights::TensorStore& store, Family family, const std::string& config_json) {
  auto line = [&](auto&& mapped, auto&& infer) -> std::string {
    if (!mapped) return "cannot map names: " + mapped.status().message();
    auto cfg = infer(**mapped, config_json);
    return cfg ? cfg->str() : "cannot infer: " + cfg.status().message();
  };
  switch (family) {
    case Family::FluxTransformer: return line(dit::flux::map_flux_checkpoint(store), flux_transformer_config);
    case Family::FluxVAE: return line(vae::flux::map_vae_store(store), flux_vae_config);
    case Family::T5Encoder: return line(weights::MappedStore::create(store, te::t5::name_map(store)), t5_config);
    case Family::ClipTextEncoder: return line(weights::MappedStore::create(store, te::clip::name_map(store)), clip_config);
    case Family::Unknown: break;
  }
  return "-";
}

int inspect_store(const std::string& path, const std::string& label, bool list) {
  auto store = weights::TensorStore::open(path);
  if (!store) {
    std::fprintf(stderr, "ditrun inspect: %s\n", store.status().message().c_str());
    return kExitModel;
  }
  const Detected d = detect_family(*store);
  std::map<std::string, size_t> dtypes;
  double bytes = 0;
  for (const std::string& n : store->names()) {
    const auto& info = store->info(n);
    ++dtypes[rt::dtype_name(info.dtype)];
    bytes += double(info.nbytes);
  }
  std::printf("%s%s\n  family: %s\n  layout: %s\n  tensors: %zu\n  dtypes:", label.c_str(), path.c_str(),
              family_name(d.family), d.layout.empty() ? "-" : d.layout.c_str(), store->size());
  for (auto& [k, v] : dtypes) std::printf(" %s=%zu", k.c_str(), v);
  const fs::path cfg = fs::is_directory(path) ? fs::path(path) / "config.json" : fs::path(path).parent_path() / "config.json";
  const std::string cfg_path = fs::exists(cfg) ? cfg.string() : "";
  std::printf("\n  size: %s\n  model: %s\n", human_bytes(bytes).c_str(), inferred_config(*store, d.family, cfg_path).c_str());
  if (!cfg_path.empty()) {
    try {
      std::ifstream in(cfg);
      std::printf("  config: %s\n", nlohmann::json::parse(in).dump().c_str());
    } catch (const std::exception& e) {
      std::printf("  config: %s is not valid JSON (%s)\n", cfg.string().c_str(), e.what());
    }
  }
  if (list)
    for (const std::string& n : store->names()) {
      const auto& info = store->info(n);
      std::printf("    %s %s%s\n", n.c_str(), rt::dtype_name(info.dtype), rt::shape_str(info.shape).c_str());
    }
  return kExitOk;
}

int run_inspect(const InspectOptions& o) {
  if (!fs::exists(o.path)) {
    std::fprintf(stderr, "ditrun inspect: %s: no such file or directory\n", o.path.c_str());
    return kExitModel;
  }
  if (fs::is_directory(o.path) && fs::exists(fs::path(o.path) / "model_index.json")) {
    std::printf("diffusers pipeline folder %s\n", o.path.c_str());
    int rc = kExitOk;
    for (const char* sub : {"transformer", "vae", "text_encoder", "text_encoder_2"}) {
      const fs::path p = fs::path(o.path) / sub;
      if (!fs::exists(p)) {
        std::printf("%s/: missing\n", sub);
        continue;
      }
      rc = std::max(rc, inspect_store(p.string(), std::string(sub) + ": ", o.tensors));
    }
    return rc;
  }
  return inspect_store(o.path, "", o.tensors);
}

}  // namespace

Command add_inspect_command(CLI::App& root) {
  auto o = std::make_shared<InspectOptions>();
  CLI::App* c = root.add_subcommand("inspect", "Show what a checkpoint holds: family, layout, config, tensors");
  c->add_option("path", o->path, "A .safetensors file, a *.safetensors.index.json, or a folder")->required();
  c->add_flag("--tensors", o->tensors, "List every tensor with dtype and shape");
  return {c, [o] { return run_inspect(*o); }};
}

}  // namespace app
