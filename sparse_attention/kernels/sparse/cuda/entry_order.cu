// order_entries (entry_order.h): one block, a stable partition of the entries by a CUB block-wide scan.
#include "sparse_attention/kernels/sparse/cuda/entry_order.h"

#include <cuda_runtime_api.h>

#include <climits>
#include <cub/block/block_scan.cuh>

#include "cuda/common.cuh"
#include "cuda/cuda_ops.h"
#include "cuda/device_state.h"
#include "sparse_attention/kernels/sparse/cuda/layout_order.cuh"

namespace sattn::kernels::cuda {
namespace {

constexpr int kOrderThreads = 1024;

template <class Args>
__global__ void __launch_bounds__(kOrderThreads) order_entries_kernel(int32_t* order, const Args a, int entries,
                                                                     int key_tiles) {
  using Scan = cub::BlockScan<int, kOrderThreads>;
  __shared__ typename Scan::TempStorage scan;
  const int per = (entries + kOrderThreads - 1) / kOrderThreads;
  const int begin = min(int(threadIdx.x) * per, entries), end = min(begin + per, entries);
  auto heavy = [&](int e) {
    const auto [qt, h, b] = entry_coords(a, e);
    return 2 * entry_tiles(a, b, h, qt).num_tiles > key_tiles;
  };
  int mine = 0;
  for (int e = begin; e < end; ++e) mine += heavy(e);
  int before = 0, total = 0;
  Scan(scan).ExclusiveSum(mine, before, total);
  int light = total + (begin - before);  // light entries before this chunk: begin - before
  for (int e = begin; e < end; ++e) order[heavy(e) ? before++ : light++] = e;
}

template <class Args>
rt::Tensor order_any(const rt::Context& ctx, const Args& a, int64_t entries, int key_tiles) {
  CHECK(entries <= INT32_MAX, "block_sparse_attention: ", entries, " (query tile, head, batch) entries");
  rt::Tensor order = rt::cuda::empty(ctx, {entries}, rt::DType::F32);  // int32 values (no int32 dtype)
  order_entries_kernel<<<1, kOrderThreads, 0, ctx.cuda().stream>>>(static_cast<int32_t*>(order.raw_data()), a,
                                                                   int(entries), key_tiles);
  rt::cuda::check_launch(ctx, "block_sparse_attention (entry order)");
  return order;
}

}  // namespace

rt::Tensor order_entries(const rt::Context& ctx, const BlockSparseArgs& a, int64_t entries, int key_tiles) {
  return order_any(ctx, a, entries, key_tiles);
}
rt::Tensor order_entries(const rt::Context& ctx, const QuantArgs& a, int64_t entries, int key_tiles) {
  return order_any(ctx, a, entries, key_tiles);
}

}  // namespace sattn::kernels::cuda
