// --model / --transformer / --vae / --t5 / --clip, shared by every command that loads a whole pipeline.
#pragma once
#include <CLI/CLI.hpp>

#include "app/pipeline/model_paths.h"

namespace app {

void add_model_options(CLI::App& cmd, ModelPathArgs& paths);

}  // namespace app
