// pack_partial_keys (packed_keys.h): three passes over the entries, all on the device: count (or refuse) each
// entry's packed keys, an exclusive scan of the counts in one block, then write the keys.
#include "sparse_attention/kernels/sparse/cuda/packed_keys.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <climits>
#include <cub/block/block_scan.cuh>

#include "cuda/common.cuh"
#include "cuda/cuda_ops.h"
#include "cuda/device_state.h"
#include "sparse_attention/kernels/sparse/block_sparse.h"

namespace sattn::kernels::cuda {
namespace {

constexpr int kBM = int(kBlockSparseQTile), kBN = int(kBlockSparseKvTile);
constexpr int kScanThreads = 1024;
static_assert(kBN == 64, "one 64-bit mask word per row and key tile");

// One block per entry, one thread per query row. Rows past the sequence end (masks 0) do not count; row 0
// always exists, so its word is the tile's if the tile packs.
__global__ void __launch_bounds__(kBM) count_kernel(int32_t* entry, const int32_t* partial_offsets, const uint64_t* masks,
                                                    int num_q_tiles, int seq_len) {
  const int e = int(blockIdx.x), row = int(threadIdx.x);
  const bool real_row = (e % num_q_tiles) * kBM + row < seq_len;
  const int begin = partial_offsets[e], end = partial_offsets[e + 1];
  int count = 0;
  bool uniform = end > begin;
  for (int s = begin; s < end && uniform; ++s) {
    const uint64_t word = masks[int64_t(s) * kBM];
    uniform = !__syncthreads_or(real_row && masks[int64_t(s) * kBM + row] != word);
    count += __popcll(word);
  }
  if (row == 0) entry[2 * e + 1] = uniform ? count : -1;
}

// One block: entry[2e] = the packed keys of the entries before e (each thread scans a run of entries).
__global__ void __launch_bounds__(kScanThreads) scan_kernel(int32_t* entry, int entries) {
  using Scan = cub::BlockScan<int, kScanThreads>;
  __shared__ typename Scan::TempStorage scan;
  const int per = (entries + kScanThreads - 1) / kScanThreads;
  const int begin = min(int(threadIdx.x) * per, entries), end = min(begin + per, entries);
  int mine = 0;
  for (int e = begin; e < end; ++e) mine += max(entry[2 * e + 1], 0);
  int before = 0;
  Scan(scan).ExclusiveSum(mine, before);
  for (int e = begin; e < end; ++e) {
    const int count = entry[2 * e + 1];
    entry[2 * e] = count < 0 ? -1 : before;
    before += max(count, 0);
  }
}

// One block per entry, one thread per key of a tile: tile by tile, each allowed key's token at its rank.
__global__ void __launch_bounds__(kBN) fill_kernel(int32_t* keys, const int32_t* entry, const int32_t* partial_offsets,
                                                   const int32_t* partial_index, const uint64_t* masks,
                                                   const int32_t* perm, const int32_t* slot_set, int seq_len) {
  const int e = int(blockIdx.x), c = int(threadIdx.x);
  if (entry[2 * e + 1] <= 0) return;
  int at = entry[2 * e];
  // The entry's perm set: every slot of one entry has the same (slot_set repeats the entry's head's).
  const int32_t* order =
      perm != nullptr && slot_set != nullptr ? perm + int64_t(slot_set[partial_offsets[e]]) * seq_len : perm;
  for (int s = partial_offsets[e]; s < partial_offsets[e + 1]; ++s) {
    const uint64_t word = masks[int64_t(s) * kBM];
    if ((word >> c) & 1) {
      const int pos = partial_index[s] * kBN + c;
      keys[at + __popcll(word & ((uint64_t(1) << c) - 1))] = order != nullptr ? order[pos] : pos;
    }
    at += __popcll(word);
  }
}

}  // namespace

PackedKeys pack_partial_keys(const rt::Context& ctx, const int32_t* partial_offsets, const int32_t* partial_index,
                             const uint64_t* masks, const int32_t* perm, const int32_t* slot_set, int64_t entries,
                             int64_t slots, int num_q_tiles, int seq_len) {
  CHECK(entries <= INT32_MAX / 2 && slots <= INT32_MAX / kBN, "block_sparse_attention: ", entries, " entries and ",
        slots, " partial tiles are too many to pack their keys");
  PackedKeys p;
  p.entry = rt::cuda::empty(ctx, {std::max<int64_t>(2 * entries, 1)}, rt::DType::F32);
  // At most every key of every partial tile; the scan's total stays on the device.
  p.keys = rt::cuda::empty(ctx, {std::max<int64_t>(slots * kBN, 1)}, rt::DType::F32);
  if (entries == 0) return p;
  int32_t* entry = static_cast<int32_t*>(p.entry.raw_data());
  const cudaStream_t stream = ctx.cuda().stream;
  count_kernel<<<unsigned(entries), kBM, 0, stream>>>(entry, partial_offsets, masks, num_q_tiles, seq_len);
  scan_kernel<<<1, kScanThreads, 0, stream>>>(entry, int(entries));
  fill_kernel<<<unsigned(entries), kBN, 0, stream>>>(static_cast<int32_t*>(p.keys.raw_data()), entry, partial_offsets,
                                                     partial_index, masks, perm, slot_set, seq_len);
  rt::cuda::check_launch(ctx, "block_sparse_attention (packed keys)");
  return p;
}

}  // namespace sattn::kernels::cuda
