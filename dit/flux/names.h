// Flux transformer checkpoint layouts and their name maps onto the canonical (BFL) names
// (models.md §1.10): fused img/txt qkv, fused single-block linear1, final adaLN rows (shift, scale).
#pragma once
#include <memory>

#include "weights/name_map.h"

namespace dit::flux {

enum class Layout { BFL, Diffusers, Unknown };
const char* layout_name(Layout l);  // "bfl", "diffusers", "unknown"

// The BFL single file, optionally under "model.diffusion_model." (ComfyUI-style repackages).
weights::NameMap flux_name_map_bfl();
// diffusers FluxTransformer2DModel: q/k/v(/proj_mlp) rows concatenated, final adaLN halves swapped.
weights::NameMap flux_name_map_diffusers();

// From tensor names only: BFL (double_blocks.* / single_blocks.*, with or without the prefix),
// diffusers (transformer_blocks.* / single_transformer_blocks.*), else Unknown.
Layout detect_flux_layout(const weights::TensorStore& store);

// Detects the layout and maps the store; an unknown layout (or another model family) is an error
// that names keys found and the keys expected.
rt::Result<std::shared_ptr<weights::MappedStore>> map_flux_checkpoint(weights::TensorStore store);
// Same with the layout given ("bfl" / "diffusers", e.g. a parity fixture's weights_format).
rt::Result<std::shared_ptr<weights::MappedStore>> map_flux_checkpoint(weights::TensorStore store, Layout layout);

}  // namespace dit::flux
