// Prompt -> expected scene, with the world's caption grammar (spec.json caption_grammar; the C++ twin of
// world.py's parse_caption):
//   object ("and" object)* "on" ("a"|"an") [texture_word] color "background"
//   object = ("a"|"an") size color shape position_phrase
// Case-insensitive, tolerant of extra whitespace, a final period and colour aliases ("grey").
// Video prompts (spec caption_grammar.video, world.py's video_caption): the object phrase carries a motion
// instead of a position phrase,
//   video_object = ("a"|"an") size color shape ("moving to the right" | "moving to the left" | "moving up"
//                  | "moving down" | "spinning")
//                | ("a"|"an") color shape ("growing"|"shrinking") "from" size "to" size
//                | ("a"|"an") size shape "changing from" color "to" color
// read from the spec's motion templates; one prompt is all image objects or all video objects.
#pragma once
#include <string>
#include <vector>

#include "app/evaluate/world_spec.h"

namespace app::eval {

struct ExpectedObject {
  std::string size, color, shape, position;  // position is the spec name ("top left"); "" in videos
  // Videos: the motion's spec name (world.py MOTIONS: move_right, move_left, move_up, move_down, grow,
  // shrink, spin, recolor), "" for images. size and color are the first frame's; grow/shrink name the
  // last frame's size in end_size, recolor the last frame's colour in end_color.
  std::string motion, end_size, end_color;
};

struct ExpectedScene {
  std::string background;
  std::string texture = "plain";
  std::vector<ExpectedObject> objects;  // caption (= drawing) order
  bool video = false;                   // the objects carry motions (and no positions)
};

// An error names the word that broke the grammar, its position, and what was expected there.
rt::Result<ExpectedScene> parse_caption(const std::string& prompt, const WorldSpec& spec);

}  // namespace app::eval
