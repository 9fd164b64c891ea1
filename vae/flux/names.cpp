// Name maps of the Flux autoencoder (models.md §1.10.3). Canonical names are BFL's; diffusers'
// reversed up-block order is spelled out as literal rules, one per block.
#include "vae/flux/names.h"

#include <algorithm>
#include <string>
#include <vector>

namespace vae::flux {

static const std::vector<std::string> kParams = {"weight", "bias"};
static const std::vector<std::string> kResnetBfl = {"norm1", "conv1", "norm2", "conv2", "nin_shortcut"};
static const std::vector<std::string> kResnetDiffusers = {"norm1", "conv1", "norm2", "conv2", "conv_shortcut"};

static void ignore_each(weights::NameMap& m, const std::string& stem, const std::vector<std::string>& parts) {
  for (const auto& part : parts)
    for (const auto& p : kParams) m.ignore(stem + part + "." + p);
}

// The encoder half of the autoencoder and the encoder-side quant_conv are known and unused here.
static void ignore_encoder_bfl(weights::NameMap& m) {
  ignore_each(m, "encoder.", {"conv_in", "norm_out", "conv_out"});
  ignore_each(m, "encoder.down.{i}.block.{j}.", kResnetBfl);
  ignore_each(m, "encoder.down.{i}.", {"downsample.conv"});
  ignore_each(m, "encoder.mid.block_{i}.", kResnetBfl);
  ignore_each(m, "encoder.mid.attn_1.", {"norm", "q", "k", "v", "proj_out"});
  ignore_each(m, "", {"quant_conv"});
}

static void ignore_encoder_diffusers(weights::NameMap& m) {
  ignore_each(m, "encoder.", {"conv_in", "conv_norm_out", "conv_out"});
  ignore_each(m, "encoder.down_blocks.{i}.resnets.{j}.", kResnetDiffusers);
  ignore_each(m, "encoder.down_blocks.{i}.", {"downsamplers.0.conv"});
  ignore_each(m, "encoder.mid_block.resnets.{i}.", kResnetDiffusers);
  ignore_each(m, "encoder.mid_block.attentions.0.",
              {"group_norm", "to_q", "to_k", "to_v", "to_out.0", "query", "key", "value", "proj_attn"});
  ignore_each(m, "", {"quant_conv"});
}

const char* layout_name(Layout layout) { return layout == Layout::BFL ? "bfl" : "diffusers"; }

rt::Result<Layout> parse_layout(const std::string& name) {
  if (name == "bfl") return Layout::BFL;
  if (name == "diffusers") return Layout::Diffusers;
  return rt::Status::error("VAE weights format '" + name + "' is unknown (expected 'bfl' or 'diffusers')");
}

weights::NameMap vae_name_map_bfl() {
  weights::NameMap m;
  m.identity_fallback();
  ignore_encoder_bfl(m);
  return m;
}

weights::NameMap vae_name_map_diffusers(int num_up_blocks, int64_t attn_channels) {
  weights::NameMap m;
  for (const auto& p : kParams) {
    for (const char* same : {"decoder.conv_in.", "decoder.conv_out.", "post_quant_conv."}) {
      m.rename(same + p, same + p);
    }
    m.rename("decoder.conv_norm_out." + p, "decoder.norm_out." + p);
    for (int k = 0; k < num_up_blocks; ++k) {
      const std::string src = "decoder.up_blocks." + std::to_string(k) + ".";
      const std::string dst = "decoder.up." + std::to_string(num_up_blocks - 1 - k) + ".";
      for (size_t s = 0; s < kResnetDiffusers.size(); ++s) {
        m.rename(src + "resnets.{j}." + kResnetDiffusers[s] + "." + p, dst + "block.{j}." + kResnetBfl[s] + "." + p);
      }
      m.rename(src + "upsamplers.0.conv." + p, dst + "upsample.conv." + p);
    }
    for (int r = 0; r < 2; ++r) {
      for (size_t s = 0; s < kResnetDiffusers.size(); ++s) {
        m.rename("decoder.mid_block.resnets." + std::to_string(r) + "." + kResnetDiffusers[s] + "." + p,
                 "decoder.mid.block_" + std::to_string(r + 1) + "." + kResnetBfl[s] + "." + p);
      }
    }
  }
  // Attention projections: diffusers stores linears [C, C]; older files use query/key/value/proj_attn.
  const std::string attn = "decoder.mid_block.attentions.0.", dst = "decoder.mid.attn_1.";
  m.rename(attn + "group_norm.weight", dst + "norm.weight");
  m.rename(attn + "group_norm.bias", dst + "norm.bias");
  const std::vector<std::pair<std::string, std::string>> proj = {
      {"to_q", "q"}, {"to_k", "k"}, {"to_v", "v"}, {"to_out.0", "proj_out"},
      {"query", "q"}, {"key", "k"}, {"value", "v"}, {"proj_attn", "proj_out"}};
  for (const auto& [from, to] : proj) {
    m.reshape(attn + from + ".weight", dst + to + ".weight", {attn_channels, attn_channels, 1, 1});
    m.rename(attn + from + ".bias", dst + to + ".bias");
  }
  ignore_encoder_diffusers(m);
  return m;
}

static bool any_starts_with(const std::vector<std::string>& names, const std::string& prefix) {
  return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return n.rfind(prefix, 0) == 0; });
}
static bool any_contains(const std::vector<std::string>& names, const std::string& part) {
  return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return n.find(part) != std::string::npos; });
}

// What the checkpoint looks like when it is not a 2D AutoencoderKL decoder, for the error's hint.
static std::string other_family_hint(const std::vector<std::string>& names) {
  if (any_contains(names, "double_blocks.") || any_contains(names, "transformer_blocks."))
    return "the names look like a diffusion transformer, not an autoencoder";
  if (any_contains(names, "decoder.upsamples.") || any_contains(names, "decoder.head."))
    return "the names look like the Wan video VAE (a causal 3D VAE), which this decoder does not load";
  if (any_contains(names, "conv_in.conv.") || any_contains(names, "conv1.conv."))
    return "the names look like a causal 3D video VAE (e.g. HunyuanVideo), which this decoder does not load";
  if (any_contains(names, "encoder.") && !any_contains(names, "decoder."))
    return "the checkpoint holds an encoder but no decoder";
  for (const char* p : {"first_stage_model.", "vae.", "model."}) {
    if (any_starts_with(names, std::string(p) + "decoder."))
      return std::string("the decoder names carry a '") + p + "' prefix; extract the VAE or strip the prefix";
  }
  return "expected decoder.up.{i}.block.{j}.* (BFL ae.safetensors) or decoder.up_blocks.{k}.resnets.{j}.* "
         "(diffusers vae/)";
}

rt::Result<Layout> detect_vae_layout(const weights::TensorStore& store) {
  const std::vector<std::string> names = store.names();
  const bool video = any_contains(names, "conv1.conv.");  // causal 3D convs wrap an inner .conv
  if (!video && (any_starts_with(names, "decoder.up_blocks.") || any_starts_with(names, "decoder.mid_block.")))
    return Layout::Diffusers;
  if (!video && (any_starts_with(names, "decoder.up.") || any_starts_with(names, "decoder.mid.")))
    return Layout::BFL;
  std::string first;
  for (size_t i = 0; i < names.size() && i < 3; ++i) first += (i ? ", " : "") + names[i];
  return rt::Status::error(store.source() + ": not a Flux/AutoencoderKL VAE checkpoint (" +
                           std::to_string(names.size()) + " tensors, e.g. " + first + "); hint: " +
                           other_family_hint(names));
}

rt::Result<std::shared_ptr<weights::MappedStore>> map_vae_store(weights::TensorStore store, Layout layout) {
  if (layout == Layout::BFL) return weights::MappedStore::create(std::move(store), vae_name_map_bfl());
  const std::vector<std::string> names = store.names();
  int num_up = 0;
  while (any_starts_with(names, "decoder.up_blocks." + std::to_string(num_up) + ".")) ++num_up;
  int64_t attn_channels = 0;
  for (const char* n : {"decoder.mid_block.attentions.0.to_q.weight", "decoder.mid_block.attentions.0.query.weight",
                        "decoder.conv_in.weight"}) {
    if (store.has(n)) {
      attn_channels = store.info(n).shape[0];
      break;
    }
  }
  return weights::MappedStore::create(std::move(store), vae_name_map_diffusers(num_up, attn_channels));
}

rt::Result<std::shared_ptr<weights::MappedStore>> map_vae_store(weights::TensorStore store) {
  RT_ASSIGN(const Layout layout, detect_vae_layout(store));
  return map_vae_store(std::move(store), layout);
}

}  // namespace vae::flux
