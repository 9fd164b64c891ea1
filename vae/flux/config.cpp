// Config parsing (diffusers config.json) and inference from checkpoint shapes.
#include "vae/flux/config.h"

#include <sstream>

#include <string>

namespace vae::flux {

static std::string join(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

std::string Config::str() const {
  std::ostringstream os;
  os << "latent " << latent_channels << " channels, " << upscale() << "x upsampling, blocks [";
  for (size_t i = 0; i < block_out_channels.size(); ++i) os << (i ? ", " : "") << block_out_channels[i];
  os << "], " << layers_per_block + 1 << " resnets per up block, groups " << norm_num_groups << ", scaling "
     << scaling_factor << ", shift " << shift_factor;
  return os.str();
}

rt::Status Config::validate() const {
  if (block_out_channels.empty()) return rt::Status::error("VAE config: block_out_channels is empty");
  for (int64_t c : block_out_channels) {
    if (c <= 0 || norm_num_groups <= 0 || c % norm_num_groups != 0) {
      return rt::Status::error("VAE config: block_out_channels " + join(block_out_channels) +
                               " must be positive multiples of norm_num_groups " + std::to_string(norm_num_groups));
    }
  }
  if (latent_channels <= 0 || out_channels <= 0 || layers_per_block < 0) {
    return rt::Status::error("VAE config: latent_channels " + std::to_string(latent_channels) + ", out_channels " +
                             std::to_string(out_channels) + " and layers_per_block " +
                             std::to_string(layers_per_block) + " must be positive (layers_per_block >= 0)");
  }
  if (scaling_factor == 0.f) return rt::Status::error("VAE config: scaling_factor must not be 0");
  return rt::Status::ok();
}

rt::Result<Config> Config::from_diffusers_json(const nlohmann::json& j) {
  // AutoencoderKL.__init__ defaults (diffusers 0.42).
  Config c;
  c.block_out_channels = {64};
  c.layers_per_block = 1;
  c.latent_channels = 4;
  c.scaling_factor = 0.18215f;
  c.shift_factor = 0.f;
  c.use_post_quant_conv = true;
  try {
    c.in_channels = j.value("in_channels", c.in_channels);
    c.out_channels = j.value("out_channels", c.out_channels);
    c.latent_channels = j.value("latent_channels", c.latent_channels);
    c.block_out_channels = j.value("block_out_channels", c.block_out_channels);
    c.layers_per_block = j.value("layers_per_block", c.layers_per_block);
    c.norm_num_groups = j.value("norm_num_groups", c.norm_num_groups);
    c.scaling_factor = j.value("scaling_factor", c.scaling_factor);
    if (j.contains("shift_factor") && !j["shift_factor"].is_null()) c.shift_factor = j["shift_factor"].get<float>();
    c.use_post_quant_conv = j.value("use_post_quant_conv", c.use_post_quant_conv);
    c.mid_block_add_attention = j.value("mid_block_add_attention", c.mid_block_add_attention);
    const std::string act = j.value("act_fn", std::string("silu"));
    if (act != "silu") {
      return rt::Status::error("VAE config: act_fn '" + act + "' is not supported (expected 'silu', as Flux's AE)");
    }
    if (j.contains("up_block_types")) {
      const auto types = j["up_block_types"].get<std::vector<std::string>>();
      for (const auto& t : types) {
        if (t != "UpDecoderBlock2D") {
          return rt::Status::error("VAE config: up block type '" + t +
                                   "' is not supported (expected 'UpDecoderBlock2D')");
        }
      }
      if (types.size() != c.block_out_channels.size()) {
        return rt::Status::error("VAE config: " + std::to_string(types.size()) + " up_block_types but " +
                                 std::to_string(c.block_out_channels.size()) + " block_out_channels");
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return rt::Status::error(std::string("VAE config: malformed AutoencoderKL config.json: ") + e.what());
  }
  RT_TRY(c.validate());
  return c;
}

rt::Result<Config> Config::from_checkpoint(const weights::MappedStore& store, const Config& base) {
  const std::string conv_in = "decoder.conv_in.weight", conv_out = "decoder.conv_out.weight";
  if (!store.has(conv_in) || !store.has(conv_out)) {
    return rt::Status::error("VAE checkpoint " + store.source().source() + ": no " + conv_in + " / " + conv_out +
                             " after name mapping; hint: is this a Flux/SD-style AutoencoderKL decoder?");
  }
  Config c = base;
  c.latent_channels = store.shape(conv_in)[1];
  c.out_channels = store.shape(conv_out)[0];
  c.block_out_channels.clear();
  for (int i = 0;; ++i) {
    const std::string n = "decoder.up." + std::to_string(i) + ".block.0.conv2.weight";
    if (!store.has(n)) break;
    c.block_out_channels.push_back(store.shape(n)[0]);
  }
  if (c.block_out_channels.empty()) {
    return rt::Status::error("VAE checkpoint " + store.source().source() +
                             ": found no decoder up blocks (decoder.up.0.block.0.conv2.weight is missing)");
  }
  int64_t resnets = 0;
  while (store.has("decoder.up.0.block." + std::to_string(resnets) + ".conv1.weight")) ++resnets;
  c.layers_per_block = resnets - 1;
  c.use_post_quant_conv = store.has("post_quant_conv.weight");
  c.mid_block_add_attention = store.has("decoder.mid.attn_1.q.weight");
  RT_TRY(c.validate().with_context("VAE checkpoint " + store.source().source() + ": "));
  return c;
}

rt::Result<Config> Config::from_checkpoint(const weights::MappedStore& store) { return from_checkpoint(store, Config{}); }

}  // namespace vae::flux
