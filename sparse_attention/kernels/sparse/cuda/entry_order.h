// The order in which the block-sparse kernels' CTAs take the layout's (query tile, head, batch) entries:
// the heavy ones first. Used by block_sparse.cu's run for every bf16/f16 kernel (sm80, sm90, sm90ws) and by
// block_sparse_quant.cu's for the quantized ones.
#pragma once
#include <cstdint>

#include "context.h"
#include "sparse_attention/kernels/sparse/cuda/block_sparse_args.h"
#include "sparse_attention/kernels/sparse/cuda/block_sparse_quant_args.h"
#include "tensor.h"

namespace sattn::kernels::cuda {

// Writes, on ctx's stream, the entry that CTA i runs (block_sparse_args.h's entry_order) for the layout in
// `a` with `entries` = query tiles · heads · batch: the entries that visit more than half of the key tiles
// first (the text rows, which attend every key, in a layout that is otherwise sparse), then the rest, each
// class in the grid's order (query tile fastest, so that the CTAs running at one time share a head's keys in
// L2). In the grid's order the last head's text rows start when about 1/heads of the work is left and then
// run alone: session 10 measured 0.9 of GRAT-B's 6.6 ms at Flux 4096² in that tail on the sm90ws kernel.
// One block, a stable partition by a block-wide scan, nothing on the host: it also orders the device-planned
// (top-k) layouts and runs inside a graph capture. The returned tensor holds the int32 order and must
// outlive the kernel launch (stream order keeps it alive while the caller holds it).
rt::Tensor order_entries(const rt::Context& ctx, const BlockSparseArgs& a, int64_t entries, int key_tiles);
rt::Tensor order_entries(const rt::Context& ctx, const QuantArgs& a, int64_t entries, int key_tiles);

}  // namespace sattn::kernels::cuda
