// The prompts file of `ditrun batch`: one item per line, either plain text (the prompt) or a JSON object
// with a "prompt" and per-item overrides:
//   a red circle on a blue background
//   {"prompt": "a green square", "seed": 7, "width": 512, "height": 256, "steps": 12, "name": "square"}
// Keys: prompt (required), negative_prompt, width, height, steps, guidance, seed, attention, dense_steps,
// name. Blank lines and lines whose first non-blank character is '#' are skipped. A bad line (invalid
// JSON, an unknown key, a wrong type, an invalid size, an empty prompt) becomes an item with an error and
// its line number: the batch reports it and goes on with the other lines.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace app {

// What a JSON line sets; unset fields take the command's flags, then the model's defaults.
struct ItemOverrides {
  std::optional<std::string> negative_prompt;
  std::optional<int64_t> width, height;
  std::optional<int> steps;
  std::optional<float> guidance;
  std::optional<uint64_t> seed;         // the first seed of the item's --seeds run
  std::optional<std::string> attention;  // a method spec (sattn::parse_method), checked here
  std::optional<int> dense_steps;
};

struct PromptItem {
  int line = 0;  // 1-based line number in the file
  std::string prompt;
  std::string name;  // the "name" key: the output file stem; empty: derived from the prompt
  ItemOverrides overrides;
  std::string error;  // non-empty: the line is bad and makes no image
};

// The item on one line, or nullopt for a blank or comment line.
std::optional<PromptItem> parse_prompt_line(std::string_view line, int line_no);
// Every item of a file's text, in order.
std::vector<PromptItem> parse_prompts(std::string_view text);
// The same for a file; only an unreadable file is an error.
rt::Result<std::vector<PromptItem>> read_prompts_file(const std::string& path);

// "" when `v` is a valid image side (16..8192, a multiple of 16), else why not, starting with `what`
// (the JSON key or the flag).
std::string image_side_error(const std::string& what, int64_t v);
// "" when `name` can be an output file stem (letters, digits, '.', '_', '-'; not starting with '.'; at
// most 100 characters), else why not.
std::string output_name_error(const std::string& name);

}  // namespace app
