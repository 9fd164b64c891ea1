// Prompt -> expected scene, with the world's caption grammar (spec.json caption_grammar; the C++ twin of
// world.py's parse_caption):
//   object ("and" object)* "on" ("a"|"an") [texture_word] color "background"
//   object = ("a"|"an") size color shape position_phrase
// Case-insensitive, tolerant of extra whitespace, a final period and colour aliases ("grey").
// Video prompts (motion phrases) are not parsed yet: they fail with the unexpected word named.
#pragma once
#include <string>
#include <vector>

#include "app/evaluate/world_spec.h"

namespace app::eval {

struct ExpectedObject {
  std::string size, color, shape, position;  // position is the spec name ("top left")
};

struct ExpectedScene {
  std::string background;
  std::string texture = "plain";
  std::vector<ExpectedObject> objects;  // caption (= drawing) order
};

// An error names the word that broke the grammar, its position, and what was expected there.
rt::Result<ExpectedScene> parse_caption(const std::string& prompt, const WorldSpec& spec);

}  // namespace app::eval
