// Tiled decoding, as diffusers' AutoencoderKL.tiled_decode: the latent is cut into overlapping tiles
// (stride 3/4 of a tile), each decoded alone, and neighbours are blended linearly over the overlap (1/4 of
// a tile) before the seams are cropped. Peak activation memory is that of one tile instead of the image;
// the result differs from a whole decode near the seams (the decoder sees less context there).
#pragma once
#include "vae/flux/decoder.h"

namespace vae::flux {

// z [B, C_lat, h, w] (unscaled) -> [B, C_out, s·h, s·w]. tile_px: output tile side in pixels, a multiple
// of 4·s (32 for Flux). A latent that fits in one tile is decoded whole.
rt::Tensor decode_tiled(const rt::Context& ctx, const Decoder& decoder, const rt::Tensor& z, int64_t tile_px);

}  // namespace vae::flux
