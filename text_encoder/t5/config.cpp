// T5 configuration: presets, transformers config.json, and inference from checkpoint shapes.
// Ref: transformers 5.24.0 models/t5/configuration_t5.py (defaults, feed_forward_proj parsing).
#include "text_encoder/t5/config.h"

#include <sstream>

namespace te::t5 {

Config Config::t5_v1_1_xxl() {
  Config c;
  c.vocab_size = 32128;
  c.d_model = 4096;
  c.d_kv = 64;
  c.num_heads = 64;
  c.d_ff = 10240;
  c.num_layers = 24;
  c.feed_forward_proj = "gated-gelu";
  return c;
}

template <typename T>
static rt::Status read_key(const nlohmann::json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return rt::Status::ok();
  try {
    *out = it->get<T>();
  } catch (const std::exception& e) {
    return rt::Status::error(std::string("T5 config: key '") + key + "' has an unexpected type: " + it->dump() +
                             " (" + e.what() + ")");
  }
  return rt::Status::ok();
}

rt::Result<Config> Config::from_transformers_json(const nlohmann::json& j) {
  if (!j.is_object()) return rt::Status::error("T5 config: expected a JSON object, got " + std::string(j.type_name()));
  Config c;
  RT_TRY(read_key(j, "vocab_size", &c.vocab_size));
  RT_TRY(read_key(j, "d_model", &c.d_model));
  RT_TRY(read_key(j, "d_kv", &c.d_kv));
  RT_TRY(read_key(j, "num_heads", &c.num_heads));
  RT_TRY(read_key(j, "d_ff", &c.d_ff));
  RT_TRY(read_key(j, "num_layers", &c.num_layers));
  RT_TRY(read_key(j, "relative_attention_num_buckets", &c.relative_attention_num_buckets));
  RT_TRY(read_key(j, "relative_attention_max_distance", &c.relative_attention_max_distance));
  RT_TRY(read_key(j, "layer_norm_epsilon", &c.layer_norm_epsilon));
  RT_TRY(read_key(j, "feed_forward_proj", &c.feed_forward_proj));
  RT_TRY(c.validate());
  return c;
}

rt::Result<Config> Config::from_checkpoint(const weights::MappedStore& store) {
  const std::string src = store.source().source();
  auto need = [&](const std::string& name, size_t rank) -> rt::Result<rt::Shape> {
    if (!store.has(name))
      return rt::Status::error("T5 config from " + src + ": tensor '" + name +
                               "' is missing, so the dimensions cannot be inferred\n  hint: is this a T5 encoder "
                               "checkpoint in transformers naming (encoder.block.N...)?");
    rt::Shape s = store.shape(name);
    if (s.size() != rank)
      return rt::Status::error("T5 config from " + src + ": '" + name + "' has shape " + rt::shape_str(s) +
                               ", expected rank " + std::to_string(rank));
    return s;
  };
  const std::string b0 = "encoder.block.0.";
  Config c = t5_v1_1_xxl();
  RT_ASSIGN(rt::Shape emb, need("shared.weight", 2));
  RT_ASSIGN(rt::Shape rel, need(b0 + "layer.0.SelfAttention.relative_attention_bias.weight", 2));
  RT_ASSIGN(rt::Shape q, need(b0 + "layer.0.SelfAttention.q.weight", 2));
  c.vocab_size = emb[0];
  c.d_model = emb[1];
  c.relative_attention_num_buckets = rel[0];
  c.num_heads = rel[1];
  if (q[0] % c.num_heads != 0)
    return rt::Status::error("T5 config from " + src + ": q.weight rows " + std::to_string(q[0]) +
                             " are not a multiple of the " + std::to_string(c.num_heads) +
                             " heads of relative_attention_bias");
  c.d_kv = q[0] / c.num_heads;
  if (store.has(b0 + "layer.1.DenseReluDense.wi_0.weight")) {
    RT_ASSIGN(rt::Shape wi, need(b0 + "layer.1.DenseReluDense.wi_0.weight", 2));
    c.d_ff = wi[0];
    c.feed_forward_proj = "gated-gelu";
  } else {
    RT_ASSIGN(rt::Shape wi, need(b0 + "layer.1.DenseReluDense.wi.weight", 2));
    c.d_ff = wi[0];
    c.feed_forward_proj = "relu";  // the original (v1.0) T5; activation() says it is unsupported
  }
  c.num_layers = 0;
  while (store.has("encoder.block." + std::to_string(c.num_layers) + ".layer.0.SelfAttention.q.weight")) ++c.num_layers;
  RT_TRY(c.validate());
  return c;
}

bool Config::is_gated() const { return feed_forward_proj.rfind("gated-", 0) == 0; }

rt::Result<Activation> Config::activation() const {
  // transformers: dense_act_fn = the part after "gated-", except that "gated-gelu" means gelu_new.
  if (feed_forward_proj == "gated-gelu") return Activation::GeluTanh;
  const std::string act = is_gated() ? feed_forward_proj.substr(6) : feed_forward_proj;
  if (act == "gelu_new" || act == "gelu_pytorch_tanh") return Activation::GeluTanh;
  if (act == "gelu") return Activation::GeluErf;
  if (act == "silu" || act == "swish") return Activation::Silu;
  return rt::Status::error("T5 config: feed_forward_proj '" + feed_forward_proj +
                           "' uses activation '" + act +
                           "', which ditrun's T5 does not implement (supported: gated-gelu, gelu, gelu_new, "
                           "gelu_pytorch_tanh, silu, each optionally 'gated-')\n  hint: T5 v1.1 / umT5 / FLUX use "
                           "gated-gelu; the original T5 (relu) would need an rt::relu op");
}

rt::Status Config::validate() const {
  auto bad = [&](const std::string& what) { return rt::Status::error("T5 config: " + what + " (" + str() + ")"); };
  if (vocab_size <= 0 || d_model <= 0 || d_kv <= 0 || num_heads <= 0 || d_ff <= 0 || num_layers <= 0)
    return bad("every dimension must be positive");
  const int64_t max_exact = relative_attention_num_buckets / 4;  // bidirectional: half the buckets, half exact
  if (relative_attention_num_buckets < 4 || relative_attention_max_distance <= max_exact)
    return bad("relative_attention_num_buckets must be >= 4 and relative_attention_max_distance > num_buckets/4");
  if (!(layer_norm_epsilon > 0.f)) return bad("layer_norm_epsilon must be positive");
  return activation().status();
}

std::string Config::str() const {
  std::ostringstream s;
  s << "vocab " << vocab_size << ", d_model " << d_model << ", heads " << num_heads << " x d_kv " << d_kv << ", d_ff "
    << d_ff << ", layers " << num_layers << ", buckets " << relative_attention_num_buckets << "/max_distance "
    << relative_attention_max_distance << ", eps " << layer_norm_epsilon << ", " << feed_forward_proj;
  return s.str();
}

}  // namespace te::t5
