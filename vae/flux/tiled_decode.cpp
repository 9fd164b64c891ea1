#include "vae/flux/tiled_decode.h"

#include <algorithm>
#include <vector>

namespace vae::flux {

using rt::Tensor;

// w [1, 1, n, 1] (dim 2) or [1, 1, 1, n] (dim 3) = i / n: the weight of the later tile across the overlap.
static Tensor ramp(const rt::Context& ctx, int64_t n, int64_t dim) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = float(i) / float(n);
  const rt::Shape shape = dim == 2 ? rt::Shape{1, 1, n, 1} : rt::Shape{1, 1, 1, n};
  return rt::to_device(ctx, Tensor::from_vector(v, shape), ctx.device(), rt::DType::F32);
}

// b's first `extent` rows (dim 2) or columns (dim 3) fade in from a's last ones: a·(1 - w) + b·w.
static Tensor blend(const rt::Context& ctx, const Tensor& a, const Tensor& b, int64_t extent, int64_t dim) {
  extent = std::min({extent, a.size(dim), b.size(dim)});
  if (extent == 0) return b;
  const Tensor a_tail = a.slice(dim, a.size(dim) - extent, a.size(dim)), b_head = b.slice(dim, 0, extent);
  const Tensor mixed = rt::add(ctx, a_tail, rt::mul(ctx, rt::sub(ctx, b_head, a_tail), ramp(ctx, extent, dim)));
  return extent == b.size(dim) ? mixed : rt::concat(ctx, {rt::cast(ctx, mixed, b.dtype()), b.slice(dim, extent, b.size(dim))}, dim);
}

Tensor decode_tiled(const rt::Context& ctx, const Decoder& decoder, const Tensor& z, int64_t tile_px) {
  const int64_t s = decoder.config().upscale();
  CHECK(tile_px > 0 && tile_px % (4 * s) == 0, "decode_tiled: tile ", tile_px, " px is not a multiple of ", 4 * s);
  const int64_t tile = tile_px / s, stride = tile * 3 / 4;  // latent units
  const int64_t blend_px = tile_px / 4, keep_px = tile_px - blend_px;
  const int64_t h = z.size(2), w = z.size(3);
  if (h <= tile && w <= tile) return decoder.forward(ctx, z);

  std::vector<std::vector<Tensor>> tiles;
  for (int64_t i = 0; i < h; i += stride) {
    tiles.emplace_back();
    for (int64_t j = 0; j < w; j += stride)
      tiles.back().push_back(decoder.forward(ctx, z.slice(2, i, std::min(h, i + tile)).slice(3, j, std::min(w, j + tile))));
  }
  std::vector<Tensor> rows;
  for (size_t r = 0; r < tiles.size(); ++r) {
    std::vector<Tensor> row;
    for (size_t c = 0; c < tiles[r].size(); ++c) {
      Tensor t = tiles[r][c];
      if (r > 0) t = blend(ctx, tiles[r - 1][c], t, blend_px, 2);
      if (c > 0) t = blend(ctx, tiles[r][c - 1], t, blend_px, 3);
      tiles[r][c] = t;  // later neighbours blend with the blended tile, as diffusers does in place
      row.push_back(t.slice(2, 0, std::min(keep_px, t.size(2))).slice(3, 0, std::min(keep_px, t.size(3))));
    }
    rows.push_back(rt::concat(ctx, row, 3));
  }
  return rt::concat(ctx, rows, 2);
}

}  // namespace vae::flux
