#include "app/batch/jobs.h"

#include <cctype>
#include <map>

namespace app {

nlohmann::json JobSettings::to_json() const {
  nlohmann::json j = {{"width", width},
                      {"height", height},
                      {"steps", steps},
                      {"guidance", guidance},
                      {"true_cfg", true_cfg},
                      {"max_sequence_length", max_sequence_length},
                      {"attention", attention},
                      {"dense_steps", dense_steps},
                      {"attention_fallback", attention_fallback},
                      {"vae_tile", vae_tile},
                      {"model", model}};
  j["negative_prompt"] = negative_prompt ? nlohmann::json(*negative_prompt) : nlohmann::json(nullptr);
  return j;
}

GenerateParams JobSettings::params(const std::string& prompt, uint64_t seed) const {
  GenerateParams p;
  p.prompt = prompt;
  p.seed = seed;
  p.width = width;
  p.height = height;
  p.steps = steps;
  p.guidance = guidance;
  p.true_cfg = true_cfg;
  p.negative_prompt = negative_prompt;
  p.max_sequence_length = max_sequence_length;
  p.vae_tile = vae_tile;
  return p;
}

nlohmann::json Job::params() const {
  nlohmann::json j = settings.to_json();
  j["prompt"] = prompt;
  j["seed"] = seed;
  return j;
}

std::string prompt_slug(const std::string& prompt, size_t max_len) {
  std::string s;
  for (char c : prompt) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 128 && std::isalnum(u)) {
      if (s.size() >= max_len) break;
      s += char(std::tolower(u));
    } else if (!s.empty() && s.back() != '-') {
      if (s.size() >= max_len) break;
      s += '-';
    }
  }
  while (!s.empty() && s.back() == '-') s.pop_back();
  return s.empty() ? "prompt" : s;
}

// The item's settings: its overrides over base. Only true CFG reads a negative prompt, so it is kept only
// then (two items that differ in an unused negative prompt make the same images and batch together).
static JobSettings item_settings(const PromptItem& item, const JobSettings& base) {
  const ItemOverrides& o = item.overrides;
  JobSettings s = base;
  if (o.width) s.width = *o.width;
  if (o.height) s.height = *o.height;
  if (o.steps) s.steps = *o.steps;
  if (o.guidance) s.guidance = *o.guidance;
  if (o.negative_prompt) s.negative_prompt = *o.negative_prompt;
  if (o.attention) s.attention = *o.attention;
  if (o.dense_steps) s.dense_steps = *o.dense_steps;
  if (s.true_cfg <= 1.f) s.negative_prompt.reset();
  return s;
}

ExpandedBatch expand_jobs(const std::vector<PromptItem>& items, const JobSettings& base, uint64_t base_seed, int seeds) {
  ExpandedBatch out;
  std::map<std::string, size_t> by_image;   // prompt + settings + seed -> job
  std::map<std::string, size_t> by_output;  // output name -> job
  for (const PromptItem& item : items) {
    if (!item.error.empty()) {
      out.errors.push_back({item.line, item.error});
      continue;
    }
    const JobSettings settings = item_settings(item, base);
    const uint64_t first = item.overrides.seed.value_or(base_seed);
    const std::string stem = item.name.empty() ? prompt_slug(item.prompt) + "_L" + std::to_string(item.line) : item.name;
    for (int k = 0; k < seeds; ++k) {
      Job job;
      job.line = item.line;
      job.prompt = item.prompt;
      job.seed = first + uint64_t(k);
      job.settings = settings;
      job.output = stem + "_s" + std::to_string(job.seed) + ".png";
      const std::string image_key = job.params().dump();
      if (auto it = by_image.find(image_key); it != by_image.end()) {
        out.jobs[it->second].duplicates.push_back(item.line);
        ++out.duplicates;
        continue;
      }
      if (auto it = by_output.find(job.output); it != by_output.end()) {
        out.errors.push_back({item.line, "output " + job.output + " is already used by line " +
                                             std::to_string(out.jobs[it->second].line) +
                                             " for another prompt or other settings; give this item another \"name\""});
        break;
      }
      by_image[image_key] = out.jobs.size();
      by_output[job.output] = out.jobs.size();
      out.jobs.push_back(std::move(job));
    }
  }
  return out;
}

std::vector<std::vector<size_t>> group_jobs(const std::vector<Job>& jobs, const std::vector<size_t>& todo) {
  std::vector<std::vector<size_t>> groups;
  std::map<std::string, size_t> index;
  for (size_t j : todo) {
    const std::string key = jobs[j].settings.to_json().dump();
    auto [it, added] = index.try_emplace(key, groups.size());
    if (added) groups.emplace_back();
    groups[it->second].push_back(j);
  }
  return groups;
}

}  // namespace app
