// CLIP text configuration: presets, transformers config.json, and inference from checkpoint shapes.
// Ref: transformers 5.24.0 models/clip/configuration_clip.py (CLIPTextConfig defaults).
#include "text_encoder/clip/config.h"

#include <sstream>

namespace te::clip {

Config Config::clip_vit_large_patch14() {
  Config c;
  c.vocab_size = 49408;
  c.hidden_size = 768;
  c.intermediate_size = 3072;
  c.num_hidden_layers = 12;
  c.num_attention_heads = 12;
  c.max_position_embeddings = 77;
  c.hidden_act = "quick_gelu";
  c.layer_norm_eps = 1e-5f;
  c.bos_token_id = 0;
  c.eos_token_id = 2;
  c.pad_token_id = 1;
  return c;
}

template <typename T>
static rt::Status read_key(const nlohmann::json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return rt::Status::ok();
  try {
    *out = it->get<T>();
  } catch (const std::exception& e) {
    return rt::Status::error(std::string("CLIP text config: key '") + key + "' has an unexpected type: " +
                             it->dump() + " (" + e.what() + ")");
  }
  return rt::Status::ok();
}

rt::Result<Config> Config::from_transformers_json(const nlohmann::json& full) {
  if (!full.is_object())
    return rt::Status::error("CLIP text config: expected a JSON object, got " + std::string(full.type_name()));
  auto tc = full.find("text_config");  // a CLIPConfig (text + vision) nests the text tower's config
  const nlohmann::json& j = (tc != full.end() && tc->is_object()) ? *tc : full;
  Config c;
  RT_TRY(read_key(j, "vocab_size", &c.vocab_size));
  RT_TRY(read_key(j, "hidden_size", &c.hidden_size));
  RT_TRY(read_key(j, "intermediate_size", &c.intermediate_size));
  RT_TRY(read_key(j, "num_hidden_layers", &c.num_hidden_layers));
  RT_TRY(read_key(j, "num_attention_heads", &c.num_attention_heads));
  RT_TRY(read_key(j, "max_position_embeddings", &c.max_position_embeddings));
  RT_TRY(read_key(j, "hidden_act", &c.hidden_act));
  RT_TRY(read_key(j, "layer_norm_eps", &c.layer_norm_eps));
  RT_TRY(read_key(j, "eos_token_id", &c.eos_token_id));
  RT_TRY(read_key(j, "bos_token_id", &c.bos_token_id));
  RT_TRY(read_key(j, "pad_token_id", &c.pad_token_id));
  RT_TRY(c.validate());
  return c;
}

rt::Result<Config> Config::from_checkpoint(const weights::MappedStore& store) {
  const std::string src = store.source().source();
  auto need = [&](const std::string& name) -> rt::Result<rt::Shape> {
    if (!store.has(name))
      return rt::Status::error("CLIP text config from " + src + ": tensor '" + name +
                               "' is missing, so the dimensions cannot be inferred\n  hint: is this a CLIP text "
                               "model checkpoint in transformers naming ([text_model.]encoder.layers.N...)?");
    rt::Shape s = store.shape(name);
    if (s.size() != 2)
      return rt::Status::error("CLIP text config from " + src + ": '" + name + "' has shape " + rt::shape_str(s) +
                               ", expected a matrix");
    return s;
  };
  Config c = clip_vit_large_patch14();
  RT_ASSIGN(rt::Shape tok, need("embeddings.token_embedding.weight"));
  RT_ASSIGN(rt::Shape pos, need("embeddings.position_embedding.weight"));
  RT_ASSIGN(rt::Shape fc1, need("encoder.layers.0.mlp.fc1.weight"));
  c.vocab_size = tok[0];
  c.hidden_size = tok[1];
  c.max_position_embeddings = pos[0];
  c.intermediate_size = fc1[0];
  c.num_attention_heads = c.hidden_size % 64 == 0 ? c.hidden_size / 64 : 1;
  c.num_hidden_layers = 0;
  while (store.has("encoder.layers." + std::to_string(c.num_hidden_layers) + ".self_attn.q_proj.weight"))
    ++c.num_hidden_layers;
  RT_TRY(c.validate());
  return c;
}

rt::Result<Activation> Config::activation() const {
  if (hidden_act == "quick_gelu") return Activation::QuickGelu;
  if (hidden_act == "gelu") return Activation::GeluErf;
  if (hidden_act == "gelu_new" || hidden_act == "gelu_pytorch_tanh") return Activation::GeluTanh;
  return rt::Status::error("CLIP text config: hidden_act '" + hidden_act +
                           "' is not implemented (supported: quick_gelu, gelu, gelu_new, gelu_pytorch_tanh)");
}

rt::Status Config::validate() const {
  auto bad = [&](const std::string& what) { return rt::Status::error("CLIP text config: " + what + " (" + str() + ")"); };
  if (vocab_size <= 0 || hidden_size <= 0 || intermediate_size <= 0 || num_hidden_layers <= 0 ||
      num_attention_heads <= 0 || max_position_embeddings <= 0)
    return bad("every dimension must be positive");
  if (hidden_size % num_attention_heads != 0) return bad("hidden_size must be a multiple of num_attention_heads");
  if (!(layer_norm_eps > 0.f)) return bad("layer_norm_eps must be positive");
  return activation().status();
}

std::string Config::str() const {
  std::ostringstream s;
  s << "vocab " << vocab_size << ", hidden " << hidden_size << ", heads " << num_attention_heads << ", mlp "
    << intermediate_size << ", layers " << num_hidden_layers << ", positions " << max_position_embeddings << ", "
    << hidden_act << ", eps " << layer_norm_eps << ", eos " << eos_token_id;
  return s.str();
}

}  // namespace te::clip
