// T5 checkpoint names -> canonical names. The canonical names are transformers' T5EncoderModel
// state-dict keys (models.md §1.10.4); every layout ditrun reads already uses them, so the map only
// settles the tied embedding and drops what an encoder never uses.
#include "text_encoder/t5/config.h"

namespace te::t5 {

static bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

weights::NameMap name_map(const weights::TensorStore& store) {
  weights::NameMap map;
  // `shared.weight` and `encoder.embed_tokens.weight` are the same tied matrix; files hold either or
  // both. Read `shared.weight` when present and treat the other copy as known-but-unused.
  if (store.has("shared.weight")) map.ignore("encoder.embed_tokens.weight");
  else map.rename("encoder.embed_tokens.weight", "shared.weight");
  // A full T5ForConditionalGeneration file: T5EncoderModel ignores the decoder the same way
  // (_keys_to_ignore_on_load_unexpected = [r"decoder"]); lm_head is the decoder's output layer.
  // The pattern language has no wildcard, so each such name is listed.
  for (const std::string& name : store.names())
    if (starts_with(name, "decoder.") || starts_with(name, "lm_head.")) map.ignore(name);
  map.identity_fallback();
  return map;
}

}  // namespace te::t5
