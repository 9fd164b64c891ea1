// CLIP text-tower checkpoint names -> canonical names (transformers 5 CLIPTextModel keys).
#include "text_encoder/clip/config.h"

namespace te::clip {

weights::NameMap name_map(const weights::TensorStore& store) {
  weights::NameMap map;
  map.strip_prefix("text_model.");
  map.ignore("embeddings.position_ids");
  map.ignore("text_projection.weight");
  map.ignore("logit_scale");
  map.ignore("visual_projection.weight");
  // The pattern language has no wildcard, so the vision tower's names are listed one by one.
  for (const std::string& name : store.names())
    if (name.rfind("vision_model.", 0) == 0) map.ignore(name);
  map.identity_fallback();
  return map;
}

}  // namespace te::clip
