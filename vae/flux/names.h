// Checkpoint layouts of the Flux autoencoder and their maps to the canonical (BFL) decoder names:
// decoder.conv_in, decoder.mid.{block_1, attn_1.{norm, q, k, v, proj_out}, block_2},
// decoder.up.{i}.block.{j}.{norm1, conv1, norm2, conv2, nin_shortcut}, decoder.up.{i}.upsample.conv,
// decoder.norm_out, decoder.conv_out, post_quant_conv. Attention projections are 1x1 convs [C, C, 1, 1].
// Encoder (and quant_conv) tensors are known and ignored: only the decoder is used.
#pragma once
#include <memory>
#include <string>

#include "weights/name_map.h"

namespace vae::flux {

enum class Layout { BFL, Diffusers };

const char* layout_name(Layout layout);
// "bfl" or "diffusers" (a fixture's weights_format).
rt::Result<Layout> parse_layout(const std::string& name);
// From the tensor names; an error names the family the checkpoint looks like when it is not this VAE.
rt::Result<Layout> detect_vae_layout(const weights::TensorStore& store);

weights::NameMap vae_name_map_bfl();
// diffusers up_blocks.k is BFL up.{num_up_blocks-1-k}; `attn_channels` (the mid-block width) is the
// shape of the reshaped attention projections [C, C] -> [C, C, 1, 1].
weights::NameMap vae_name_map_diffusers(int num_up_blocks, int64_t attn_channels);

// The store seen through the map of `layout`; the diffusers map's sizes are read from the store.
rt::Result<std::shared_ptr<weights::MappedStore>> map_vae_store(weights::TensorStore store, Layout layout);
// Same, with the layout detected from the names.
rt::Result<std::shared_ptr<weights::MappedStore>> map_vae_store(weights::TensorStore store);

}  // namespace vae::flux
