// Where each component of a Flux model lives: a diffusers folder (model_index.json, transformer/,
// vae/, text_encoder/ (CLIP), text_encoder_2/ (T5), tokenizer/, tokenizer_2/, scheduler/), with
// per-component overrides for the original single files.
#pragma once
#include <string>

#include "base/status.h"

namespace app {

struct ModelPathArgs {
  std::string model;        // diffusers folder (optional when every component is overridden)
  std::string transformer;  // --transformer FILE|DIR
  std::string vae;          // --vae FILE|DIR
  std::string t5;           // --t5 DIR (weights + spiece.model)
  std::string clip;         // --clip DIR (weights + vocab.json/merges.txt or tokenizer.json)
};

struct ComponentPaths {
  std::string transformer, transformer_config;  // weights path; config.json ("" if none)
  std::string vae, vae_config;
  std::string t5, t5_config, t5_tokenizer;      // tokenizer: folder with spiece.model
  std::string clip, clip_config, clip_tokenizer;  // tokenizer: folder with vocab.json+merges.txt or tokenizer.json
  std::string scheduler_config;                 // "" when absent (defaults follow the transformer variant)
  std::string defaults;                         // ditrun_defaults.json of the folder ("" when absent)
};

// The model used when no --model or component flag is given: the embedded model shipped in the
// repository (models/ditrun-shapes), or the folder named by the DITRUN_EMBEDDED_MODEL environment
// variable.
std::string embedded_model_dir();

// Resolves and checks that every component exists; errors name the missing piece and the flag that
// supplies it.
rt::Result<ComponentPaths> resolve_model_paths(const ModelPathArgs& args);

}  // namespace app
