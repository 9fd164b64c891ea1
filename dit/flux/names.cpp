#include "dit/flux/names.h"

#include <string>
#include <vector>

namespace dit::flux {

static constexpr const char* kBflPrefix = "model.diffusion_model.";

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::BFL: return "bfl";
    case Layout::Diffusers: return "diffusers";
    case Layout::Unknown: return "unknown";
  }
  return "unknown";
}

weights::NameMap flux_name_map_bfl() {
  weights::NameMap m;
  m.strip_prefix(kBflPrefix).identity_fallback();
  return m;
}

weights::NameMap flux_name_map_diffusers() {
  weights::NameMap m;
  // Renames of linear layers: both .weight and .bias.
  const std::vector<std::pair<std::string, std::string>> linears = {
      {"x_embedder", "img_in"},
      {"context_embedder", "txt_in"},
      {"time_text_embed.timestep_embedder.linear_1", "time_in.in_layer"},
      {"time_text_embed.timestep_embedder.linear_2", "time_in.out_layer"},
      {"time_text_embed.guidance_embedder.linear_1", "guidance_in.in_layer"},
      {"time_text_embed.guidance_embedder.linear_2", "guidance_in.out_layer"},
      {"time_text_embed.text_embedder.linear_1", "vector_in.in_layer"},
      {"time_text_embed.text_embedder.linear_2", "vector_in.out_layer"},
      {"transformer_blocks.{i}.norm1.linear", "double_blocks.{i}.img_mod.lin"},
      {"transformer_blocks.{i}.norm1_context.linear", "double_blocks.{i}.txt_mod.lin"},
      {"transformer_blocks.{i}.attn.to_out.0", "double_blocks.{i}.img_attn.proj"},
      {"transformer_blocks.{i}.attn.to_add_out", "double_blocks.{i}.txt_attn.proj"},
      {"transformer_blocks.{i}.ff.net.0.proj", "double_blocks.{i}.img_mlp.0"},
      {"transformer_blocks.{i}.ff.net.2", "double_blocks.{i}.img_mlp.2"},
      {"transformer_blocks.{i}.ff_context.net.0.proj", "double_blocks.{i}.txt_mlp.0"},
      {"transformer_blocks.{i}.ff_context.net.2", "double_blocks.{i}.txt_mlp.2"},
      {"single_transformer_blocks.{i}.norm.linear", "single_blocks.{i}.modulation.lin"},
      {"single_transformer_blocks.{i}.proj_out", "single_blocks.{i}.linear2"},
      {"proj_out", "final_layer.linear"},
  };
  for (const auto& [from, to] : linears) {
    for (const char* leaf : {".weight", ".bias"}) m.rename(from + leaf, to + leaf);
  }
  const std::vector<std::pair<std::string, std::string>> norms = {
      {"transformer_blocks.{i}.attn.norm_q.weight", "double_blocks.{i}.img_attn.norm.query_norm.scale"},
      {"transformer_blocks.{i}.attn.norm_k.weight", "double_blocks.{i}.img_attn.norm.key_norm.scale"},
      {"transformer_blocks.{i}.attn.norm_added_q.weight", "double_blocks.{i}.txt_attn.norm.query_norm.scale"},
      {"transformer_blocks.{i}.attn.norm_added_k.weight", "double_blocks.{i}.txt_attn.norm.key_norm.scale"},
      {"single_transformer_blocks.{i}.attn.norm_q.weight", "single_blocks.{i}.norm.query_norm.scale"},
      {"single_transformer_blocks.{i}.attn.norm_k.weight", "single_blocks.{i}.norm.key_norm.scale"},
  };
  for (const auto& [from, to] : norms) m.rename(from, to);
  for (const char* leaf : {".weight", ".bias"}) {
    const std::string l = leaf;
    const std::string d = "transformer_blocks.{i}.attn.", s = "single_transformer_blocks.{i}.";
    m.concat_rows({d + "to_q" + l, d + "to_k" + l, d + "to_v" + l}, "double_blocks.{i}.img_attn.qkv" + l);
    m.concat_rows({d + "add_q_proj" + l, d + "add_k_proj" + l, d + "add_v_proj" + l},
                  "double_blocks.{i}.txt_attn.qkv" + l);
    m.concat_rows({s + "attn.to_q" + l, s + "attn.to_k" + l, s + "attn.to_v" + l, s + "proj_mlp" + l},
                  "single_blocks.{i}.linear1" + l);
    // AdaLayerNormContinuous splits (scale, shift); BFL's LastLayer splits (shift, scale).
    m.swap_halves("norm_out.linear" + l, "final_layer.adaLN_modulation.1" + l);
  }
  return m;
}

static bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

Layout detect_flux_layout(const weights::TensorStore& store) {
  int bfl = 0, diffusers = 0;
  for (const auto& full : store.names()) {
    const std::string n = starts_with(full, kBflPrefix) ? full.substr(std::string(kBflPrefix).size()) : full;
    if (starts_with(n, "double_blocks.") || starts_with(n, "single_blocks.") || starts_with(n, "img_in.")) ++bfl;
    if (starts_with(n, "transformer_blocks.") || starts_with(n, "single_transformer_blocks.") ||
        starts_with(n, "x_embedder."))
      ++diffusers;
  }
  if (bfl > 0 && diffusers == 0) return Layout::BFL;
  if (diffusers > 0 && bfl == 0) return Layout::Diffusers;
  return Layout::Unknown;
}

static std::string some_keys(const weights::TensorStore& store) {
  const auto names = store.names();
  std::string s;
  for (size_t i = 0; i < names.size() && i < 3; ++i) s += (i ? ", " : "") + names[i];
  if (names.empty()) s = "(no tensors)";
  return s;
}

rt::Result<std::shared_ptr<weights::MappedStore>> map_flux_checkpoint(weights::TensorStore store) {
  const Layout layout = detect_flux_layout(store);
  if (layout == Layout::Unknown) {
    return rt::Status::error(store.source() + ": this checkpoint does not look like a Flux transformer: found keys like " +
                             some_keys(store) + "; expected double_blocks.* (BFL) or transformer_blocks.* (diffusers)");
  }
  return map_flux_checkpoint(std::move(store), layout);
}

rt::Result<std::shared_ptr<weights::MappedStore>> map_flux_checkpoint(weights::TensorStore store, Layout layout) {
  switch (layout) {
    case Layout::BFL: return weights::MappedStore::create(std::move(store), flux_name_map_bfl());
    case Layout::Diffusers: return weights::MappedStore::create(std::move(store), flux_name_map_diffusers());
    case Layout::Unknown: break;
  }
  return map_flux_checkpoint(std::move(store));
}

}  // namespace dit::flux
