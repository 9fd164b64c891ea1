#include "app/pipeline/model_paths.h"

#include <cstdlib>
#include <filesystem>

namespace app {

namespace fs = std::filesystem;

static std::string if_exists(const fs::path& p) { return fs::exists(p) ? p.string() : std::string(); }

// The config.json next to a weights file or inside a weights folder.
static std::string config_for(const std::string& weights) {
  const fs::path p(weights);
  return if_exists(fs::is_directory(p) ? p / "config.json" : p.parent_path() / "config.json");
}

static bool has_tokenizer_files(const fs::path& dir, bool t5) {
  if (t5) return fs::exists(dir / "spiece.model");
  return (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt")) || fs::exists(dir / "tokenizer.json");
}

std::string embedded_model_dir() {
  if (const char* env = std::getenv("DITRUN_EMBEDDED_MODEL"); env && *env) return env;
  return DITRUN_EMBEDDED_MODEL;
}

rt::Result<ComponentPaths> resolve_model_paths(const ModelPathArgs& args) {
  ModelPathArgs a = args;
  if (a.model.empty() && a.transformer.empty() && a.vae.empty() && a.t5.empty() && a.clip.empty()) {
    a.model = embedded_model_dir();
    if (!fs::exists(fs::path(a.model) / "model_index.json"))
      return rt::Status::error("no --model given and the embedded model is not at " + a.model +
                               " (set DITRUN_EMBEDDED_MODEL to its folder, or pass --model DIR)");
  }
  ComponentPaths c;
  const fs::path root(a.model);
  if (!a.model.empty()) {
    if (!fs::exists(root)) return rt::Status::error("--model " + a.model + ": no such file or directory");
    if (!fs::is_directory(root))
      return rt::Status::error("--model " + a.model +
                               " is a file; --model takes a diffusers Flux folder (with model_index.json). For an "
                               "original single-file checkpoint use --transformer FILE with --vae, --t5 and --clip");
    if (!fs::exists(root / "model_index.json"))
      return rt::Status::error("--model " + a.model +
                               ": no model_index.json; expected a diffusers Flux folder (as saved by "
                               "FluxPipeline.save_pretrained or downloaded from the Hub)");
  }
  auto pick = [&](const std::string& override_path, const char* sub, const char* flag) -> rt::Result<std::string> {
    if (!override_path.empty()) {
      if (!fs::exists(override_path)) return rt::Status::error(std::string(flag) + " " + override_path + ": no such file or directory");
      return override_path;
    }
    if (a.model.empty())
      return rt::Status::error(std::string("no ") + sub + " given: pass --model DIR (a diffusers Flux folder) or " + flag);
    const fs::path p = root / sub;
    if (!fs::is_directory(p))
      return rt::Status::error("--model " + a.model + ": missing the " + sub + "/ folder; pass " + flag + " to supply it");
    return p.string();
  };
  RT_ASSIGN(c.transformer, pick(a.transformer, "transformer", "--transformer"));
  RT_ASSIGN(c.vae, pick(a.vae, "vae", "--vae"));
  RT_ASSIGN(c.t5, pick(a.t5, "text_encoder_2", "--t5"));
  RT_ASSIGN(c.clip, pick(a.clip, "text_encoder", "--clip"));
  c.transformer_config = config_for(c.transformer);
  c.vae_config = config_for(c.vae);
  c.t5_config = config_for(c.t5);
  c.clip_config = config_for(c.clip);

  // Tokenizers sit beside the encoder in a standalone folder, or in tokenizer/ and tokenizer_2/ of a
  // diffusers folder.
  auto tokenizer = [&](const std::string& enc, const char* sub, bool t5, const char* flag) -> rt::Result<std::string> {
    const fs::path enc_dir = fs::is_directory(enc) ? fs::path(enc) : fs::path(enc).parent_path();
    if (has_tokenizer_files(enc_dir, t5)) return enc_dir.string();
    if (!a.model.empty() && has_tokenizer_files(root / sub, t5)) return (root / sub).string();
    return rt::Status::error(std::string("no ") + (t5 ? "T5 tokenizer (spiece.model)" : "CLIP tokenizer (vocab.json + merges.txt, or tokenizer.json)") +
                             " found next to " + enc + (a.model.empty() ? "" : " or in " + (root / sub).string()) +
                             "; put the tokenizer files in the folder given to " + flag);
  };
  RT_ASSIGN(c.t5_tokenizer, tokenizer(c.t5, "tokenizer_2", true, "--t5"));
  RT_ASSIGN(c.clip_tokenizer, tokenizer(c.clip, "tokenizer", false, "--clip"));
  if (!a.model.empty()) {
    c.scheduler_config = if_exists(root / "scheduler" / "scheduler_config.json");
    c.defaults = if_exists(root / "ditrun_defaults.json");
  }
  return c;
}

}  // namespace app
