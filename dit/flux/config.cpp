#include "dit/flux/config.h"

#include <numeric>


namespace dit::flux {

using rt::Status;

static std::string axes_str(const std::vector<int64_t>& a) {
  std::string s = "(";
  for (size_t i = 0; i < a.size(); ++i) s += (i ? ", " : "") + std::to_string(a[i]);
  return s + ")";
}

Status Config::validate() const {
  auto bad = [](const std::string& what) { return Status::error("invalid Flux config: " + what); };
  if (hidden_size <= 0 || num_heads <= 0 || head_dim <= 0 || in_channels <= 0 || out_channels <= 0 ||
      context_dim <= 0 || pooled_dim <= 0 || depth < 0 || depth_single < 0)
    return bad("dimensions must be positive: " + str());
  if (hidden_size != num_heads * head_dim)
    return bad("hidden size " + std::to_string(hidden_size) + " != heads " + std::to_string(num_heads) +
               " x head dim " + std::to_string(head_dim));
  const int64_t axes_sum = std::accumulate(axes_dims_rope.begin(), axes_dims_rope.end(), int64_t(0));
  if (axes_sum != head_dim)
    return bad("axes_dims_rope " + axes_str(axes_dims_rope) + " sum to " + std::to_string(axes_sum) +
               ", expected the head dim " + std::to_string(head_dim));
  for (int64_t a : axes_dims_rope)
    if (a <= 0 || a % 2 != 0) return bad("every axes_dims_rope entry must be even and positive, got " + axes_str(axes_dims_rope));
  if (mlp_ratio <= 0.f) return bad("mlp_ratio must be positive");
  return Status::ok();
}

std::string Config::str() const {
  return "hidden " + std::to_string(hidden_size) + " (" + std::to_string(num_heads) + " heads x " +
         std::to_string(head_dim) + "), " + std::to_string(depth) + " double + " + std::to_string(depth_single) +
         " single blocks, in/out " + std::to_string(in_channels) + "/" + std::to_string(out_channels) + ", context " +
         std::to_string(context_dim) + ", pooled " + std::to_string(pooled_dim) + ", mlp " +
         std::to_string(mlp_hidden()) + ", rope axes " + axes_str(axes_dims_rope) + ", guidance " +
         (guidance_embed ? "embedded" : "none");
}

Config Config::flux_dev() { return Config{}; }

Config Config::flux_schnell() {
  Config c;
  c.guidance_embed = false;
  return c;
}

rt::Result<Config> Config::preset(const std::string& name) {
  if (name == "flux-dev") return flux_dev();
  if (name == "flux-schnell") return flux_schnell();
  return Status::error("unknown Flux preset '" + name + "' (expected flux-dev or flux-schnell)");
}

// ---- diffusers config.json -----------------------------------------------------------------------

static rt::Result<int64_t> json_int(const nlohmann::json& j, const char* key, int64_t def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_number_integer())
    return Status::error(std::string("Flux config: '") + key + "' must be an integer, got " + j[key].dump());
  return j[key].get<int64_t>();
}

static rt::Result<std::vector<int64_t>> parse_axes(const nlohmann::json& a) {
  if (!a.is_array()) return Status::error("Flux config: 'axes_dims_rope' must be a list, got " + a.dump());
  std::vector<int64_t> axes;
  for (const auto& v : a) {
    if (!v.is_number_integer()) return Status::error("Flux config: 'axes_dims_rope' must hold integers, got " + a.dump());
    axes.push_back(v.get<int64_t>());
  }
  return axes;
}

rt::Result<Config> Config::from_diffusers_json(const nlohmann::json& j) {
  if (!j.is_object()) return Status::error("Flux config: expected a JSON object, got " + j.dump());
  Config c;
  RT_ASSIGN(const int64_t patch, json_int(j, "patch_size", 1));
  RT_ASSIGN(c.in_channels, json_int(j, "in_channels", 64));
  RT_ASSIGN(const int64_t out, json_int(j, "out_channels", c.in_channels));
  RT_ASSIGN(c.depth, json_int(j, "num_layers", 19));
  RT_ASSIGN(c.depth_single, json_int(j, "num_single_layers", 38));
  RT_ASSIGN(c.head_dim, json_int(j, "attention_head_dim", 128));
  RT_ASSIGN(c.num_heads, json_int(j, "num_attention_heads", 24));
  RT_ASSIGN(c.context_dim, json_int(j, "joint_attention_dim", 4096));
  RT_ASSIGN(c.pooled_dim, json_int(j, "pooled_projection_dim", 768));
  c.out_channels = patch * patch * out;  // diffusers' proj_out width
  c.hidden_size = c.num_heads * c.head_dim;
  c.guidance_embed = false;
  if (j.contains("guidance_embeds") && !j["guidance_embeds"].is_null()) {
    if (!j["guidance_embeds"].is_boolean()) return Status::error("Flux config: 'guidance_embeds' must be a boolean");
    c.guidance_embed = j["guidance_embeds"].get<bool>();
  }
  if (j.contains("axes_dims_rope") && !j["axes_dims_rope"].is_null()) {
    RT_ASSIGN(c.axes_dims_rope, parse_axes(j["axes_dims_rope"]));
  }
  RT_TRY(c.validate());
  return c;
}

// ---- checkpoint shapes ---------------------------------------------------------------------------

static int64_t count_blocks(const weights::MappedStore& s, const std::string& pattern) {
  int64_t n = 0;
  for (const auto& name : s.names())
    if (weights::match_pattern(pattern, name, nullptr)) ++n;
  return n;
}

rt::Result<Config> Config::from_checkpoint(const weights::MappedStore& s, const nlohmann::json* diffusers_json) {
  auto need = [&](const std::string& name, size_t rank) -> rt::Result<rt::Shape> {
    if (!s.has(name))
      return Status::error("cannot infer the Flux config: the checkpoint has no '" + name +
                           "' (after name mapping); is this a Flux transformer?");
    rt::Shape sh = s.shape(name);
    if (sh.size() != rank)
      return Status::error("cannot infer the Flux config: '" + name + "' has shape " + rt::shape_str(sh) +
                           ", expected rank " + std::to_string(rank));
    return sh;
  };
  Config c;
  RT_ASSIGN(const rt::Shape img_in, need("img_in.weight", 2));
  RT_ASSIGN(const rt::Shape txt_in, need("txt_in.weight", 2));
  RT_ASSIGN(const rt::Shape vector_in, need("vector_in.in_layer.weight", 2));
  RT_ASSIGN(const rt::Shape final_linear, need("final_layer.linear.weight", 2));
  c.hidden_size = img_in[0];
  c.in_channels = img_in[1];
  c.context_dim = txt_in[1];
  c.pooled_dim = vector_in[1];
  c.out_channels = final_linear[0];
  c.depth = count_blocks(s, "double_blocks.{i}.img_attn.qkv.weight");
  c.depth_single = count_blocks(s, "single_blocks.{i}.linear1.weight");
  c.guidance_embed = s.has("guidance_in.in_layer.weight");

  const std::string norm_name = c.depth > 0 ? "double_blocks.0.img_attn.norm.query_norm.scale"
                                            : "single_blocks.0.norm.query_norm.scale";
  RT_ASSIGN(const rt::Shape qn, need(norm_name, 1));
  c.head_dim = qn[0];
  if (c.head_dim <= 0 || c.hidden_size % c.head_dim != 0)
    return Status::error("cannot infer the Flux config: hidden size " + std::to_string(c.hidden_size) +
                         " is not a multiple of the head dim " + std::to_string(c.head_dim) + " (from " + norm_name + ")");
  c.num_heads = c.hidden_size / c.head_dim;

  if (c.depth > 0) {
    RT_ASSIGN(const rt::Shape mlp0, need("double_blocks.0.img_mlp.0.weight", 2));
    c.mlp_ratio = float(mlp0[0]) / float(c.hidden_size);
    c.qkv_bias = s.has("double_blocks.0.img_attn.qkv.bias");
  } else if (c.depth_single > 0) {
    RT_ASSIGN(const rt::Shape l1, need("single_blocks.0.linear1.weight", 2));
    c.mlp_ratio = float(l1[0] - 3 * c.hidden_size) / float(c.hidden_size);
    c.qkv_bias = s.has("single_blocks.0.linear1.bias");
  }

  if (diffusers_json && diffusers_json->contains("axes_dims_rope") && !(*diffusers_json)["axes_dims_rope"].is_null()) {
    RT_ASSIGN(c.axes_dims_rope, parse_axes((*diffusers_json)["axes_dims_rope"]));
  } else if (c.head_dim == 128) {
    c.axes_dims_rope = {16, 56, 56};
  } else {
    return Status::error("cannot infer the Flux RoPE axes for head dim " + std::to_string(c.head_dim) +
                         " from tensor shapes (only head dim 128 has a known default (16, 56, 56)); "
                         "hint: pass the transformer's config.json (axes_dims_rope)");
  }
  RT_TRY(c.validate());
  return c;
}

}  // namespace dit::flux
