// PNG output for generated images: diffusers-identical float -> uint8 conversion, text metadata chunks
// ("parameters", "Software"), and an atomic write (temp file in the target directory, fsync, rename),
// so a crash or a full disk never leaves a truncated image under the requested name.
// The readers exist for tests and for comparing our output with diffusers' PNGs.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime/base/status.h"
#include "runtime/tensor.h"

namespace app {

using PngText = std::vector<std::pair<std::string, std::string>>;

// Validates an output path before a long generation: the extension is .png, the parent directory
// exists and is writable, and the file does not exist unless `overwrite`.
rt::Status check_output_path(const std::string& path, bool overwrite);

// diffusers' VaeImageProcessor.postprocess + numpy_to_pil on a float32 [3, H, W] decoder output in
// [-1, 1]: v = clamp(x * 0.5 + 0.5, 0, 1), byte = round_half_even(v * 255), all in float32 like the
// torch/numpy ops. Returns H*W*3 bytes, RGB interleaved (HWC). NaN maps to 0.
std::vector<uint8_t> to_rgb8(const rt::Tensor& image);

// Writes `image` (as to_rgb8 converts it) to `path` with the given text chunks placed right after
// IHDR. Keys are PNG keywords (1-79 printable Latin-1 characters); values are UTF-8: ASCII values go
// into tEXt, others into an uncompressed iTXt chunk. Refuses an existing file unless `overwrite`,
// before doing any work.
rt::Status write_png(const std::string& path, const rt::Tensor& image, const PngText& text_chunks,
                     bool overwrite);

// Decodes a PNG to 8-bit RGB (HWC). Sets *w and *h.
rt::Result<std::vector<uint8_t>> read_png_rgb8(const std::string& path, int* w, int* h);

// Key/value pairs of the tEXt and uncompressed iTXt chunks, in file order. Fails on a bad signature,
// a truncated chunk or a CRC mismatch in any chunk.
rt::Result<PngText> read_png_text(const std::string& path);

}  // namespace app
