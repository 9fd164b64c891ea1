// From prompt items to images: every (item, seed) is a job with fully resolved settings and a
// deterministic output file name; jobs with equal settings form a group that runs batched.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/batch/prompts_file.h"
#include "app/pipeline/flux_pipeline.h"

namespace app {

// Everything an image depends on besides its prompt and seed: equal settings batch together.
struct JobSettings {
  int64_t width = 0, height = 0;
  int steps = 0;
  float guidance = 0.f;
  float true_cfg = 1.f;
  std::optional<std::string> negative_prompt;  // set only where true CFG runs (true_cfg > 1)
  int max_sequence_length = 0;
  std::string attention = "dense";  // as written; parsed by sattn::parse_method
  int dense_steps = 0;
  bool attention_fallback = true;  // dense where the sparse method cannot beat it (as generate; --no-attention-fallback)
  int64_t vae_tile = 0;
  std::string model;  // --model as given: part of what made an image, so of the resume check

  // The settings as JSON (the manifest's "params" without prompt and seed); equal JSON = one group.
  nlohmann::json to_json() const;
  // The GenerateParams of one image of these settings.
  GenerateParams params(const std::string& prompt, uint64_t seed) const;
};

struct Job {
  int line = 0;                 // the item's line in the prompts file
  std::vector<int> duplicates;  // later lines that asked for this very image
  std::string prompt;
  uint64_t seed = 0;
  JobSettings settings;
  std::string output;  // file name inside the output directory

  // The manifest's "params": prompt, seed and the settings.
  nlohmann::json params() const;
};

// A line that makes no image: a bad line, or an output name another item already took.
struct ItemError {
  int line = 0;
  std::string message;
};

struct ExpandedBatch {
  std::vector<Job> jobs;  // in file order, seeds in order within an item
  std::vector<ItemError> errors;
  int duplicates = 0;  // jobs merged into an earlier identical one
};

// Expands items into jobs: seeds seed..seed+seeds-1 where seed is the item's "seed" or base_seed;
// the item's overrides replace `base` (the command's flags over the model's defaults). Output names:
// "<name>_s<seed>.png" for items with a "name", else "<slug of the prompt>_L<line>_s<seed>.png".
// A job equal to an earlier one (prompt, settings, seed) is merged into it.
ExpandedBatch expand_jobs(const std::vector<PromptItem>& items, const JobSettings& base, uint64_t base_seed, int seeds);

// Lowercase ASCII letters and digits of `prompt`, other runs as one '-', at most max_len characters;
// "prompt" when nothing is left.
std::string prompt_slug(const std::string& prompt, size_t max_len = 40);

// Jobs split into groups of equal settings, in order of first appearance; each group lists job indices.
std::vector<std::vector<size_t>> group_jobs(const std::vector<Job>& jobs, const std::vector<size_t>& todo);

}  // namespace app
