#include "app/pipeline/detect.h"

namespace app {

static bool has_prefix_key(const weights::TensorStore& s, const std::string& prefix) {
  for (const std::string& n : s.names())
    if (n.rfind(prefix, 0) == 0) return true;
  return false;
}

Detected detect_family(const weights::TensorStore& s) {
  if (has_prefix_key(s, "double_blocks.")) return {Family::FluxTransformer, "bfl"};
  if (has_prefix_key(s, "model.diffusion_model.double_blocks.")) return {Family::FluxTransformer, "bfl (model.diffusion_model. prefix)"};
  if (has_prefix_key(s, "single_transformer_blocks.") || (has_prefix_key(s, "transformer_blocks.") && has_prefix_key(s, "x_embedder.")))
    return {Family::FluxTransformer, "diffusers"};
  if (s.has("decoder.conv_in.weight") || s.has("encoder.conv_in.weight")) {
    const bool diffusers = has_prefix_key(s, "decoder.up_blocks.") || has_prefix_key(s, "encoder.down_blocks.");
    return {Family::FluxVAE, diffusers ? "diffusers" : "bfl"};
  }
  if (has_prefix_key(s, "encoder.block.0.layer.0.SelfAttention.")) return {Family::T5Encoder, "transformers"};
  if (has_prefix_key(s, "text_model.embeddings.")) return {Family::ClipTextEncoder, "transformers"};
  // transformers 5 saves CLIPTextModel without the text_model. prefix.
  if (s.has("embeddings.token_embedding.weight") && has_prefix_key(s, "encoder.layers."))
    return {Family::ClipTextEncoder, "transformers (no text_model. prefix)"};
  return {};
}

const char* family_name(Family f) {
  switch (f) {
    case Family::FluxTransformer: return "Flux transformer";
    case Family::FluxVAE: return "Flux autoencoder (VAE)";
    case Family::T5Encoder: return "T5 encoder";
    case Family::ClipTextEncoder: return "CLIP text encoder";
    case Family::Unknown: break;
  }
  return "unknown";
}

rt::Status expect_family(const weights::TensorStore& s, Family want, const std::string& flag) {
  const Detected d = detect_family(s);
  if (d.family == want) return rt::Status::ok();
  const auto names = s.names();
  std::string example = names.empty() ? "(no tensors)" : names.front();
  if (d.family == Family::Unknown)
    return rt::Status::error(s.source() + ": not a " + family_name(want) + " checkpoint (unrecognised tensor names, e.g. '" +
                             example + "'); check the path given to " + flag);
  return rt::Status::error(s.source() + ": this is a " + family_name(d.family) + " checkpoint, but " + flag +
                           " expects a " + family_name(want));
}

}  // namespace app
