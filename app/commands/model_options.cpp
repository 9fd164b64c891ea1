#include "app/commands/model_options.h"

namespace app {

void add_model_options(CLI::App& cmd, ModelPathArgs& paths) {
  cmd.add_option("--model", paths.model,
                 "diffusers Flux folder (model_index.json, transformer/, vae/, ...); default: the embedded model");
  cmd.add_option("--transformer", paths.transformer,
                 "Flux transformer weights (BFL single file or diffusers folder); overrides --model's");
  cmd.add_option("--vae", paths.vae, "Flux AE weights (ae.safetensors or a diffusers vae folder)");
  cmd.add_option("--t5", paths.t5, "T5 encoder folder (weights and spiece.model)");
  cmd.add_option("--clip", paths.clip, "CLIP text encoder folder (weights and vocab.json + merges.txt or tokenizer.json)");
}

}  // namespace app
