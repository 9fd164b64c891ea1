// Block-sparse flash attention (FA2 structure on sm_80 instructions, which run on sm_90a). One CTA of four
// warps per (batch, head, query tile of 128 rows); each warp owns 32 query rows (two m16 row blocks).
// The CTA walks its key tiles of 64 from the layout's CSR lists, full tiles first, then partial ones:
//   S = Q·Kᵀ (mma.sync m16n8k16, f32 accumulators, Q and K through ldmatrix from swizzled shared memory),
//   mask (partial tiles: the element mask from allowed() in natural token indices, precomputed per
//   partial tile by upload_layout as 64-bit rows; the ragged last key tile: keys past the end), online softmax in f32 with exp2 (max-subtracted, rescaling O when the max grows),
//   O += P·V with P rounded to the input dtype (as every flash attention does) and V through
//   ldmatrix.trans. K and V are double-buffered with cp.async: K[i+1] streams in during tile i, V[i+1]
//   from the middle of tile i on, each behind its own commit group.
// Rows are gathered through layout.perm in the loads (q, k, v stay in natural order in global memory) and
// scattered back through it in the stores, so re-layouts cost no extra pass. The layout's lists and masks
// reach the kernel through upload_layout: once per call, or once per plan when the caller keeps the upload.
//
// The Hopper kernels on wgmma (block_sparse_sm90.cu, and its warp-specialized variant block_sparse_sm90ws.cu,
// what Auto runs there) take the same arguments (BlockSparseArgs, filled by run() below for all three);
// AttentionParams::sparse_kernel, or for Auto select_block_sparse_kernel, picks which.
#include "sparse_attention/kernels/sparse/block_sparse.h"

#include <cmath>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "cuda/common.cuh"
#include "cuda/cuda_ops.h"
#include "cuda/device_state.h"
#include "sparse_attention/kernels/sparse/cuda/block_sparse_args.h"
#include "sparse_attention/kernels/sparse/cuda/block_sparse_sm90.h"
#include "sparse_attention/kernels/sparse/cuda/entry_order.h"
#include "sparse_attention/kernels/sparse/cuda/flash_softmax.cuh"
#include "sparse_attention/kernels/sparse/cuda/layout_order.cuh"
#include "sparse_attention/kernels/sparse/cuda/packed_keys.h"
#include "sparse_attention/kernels/sparse/cuda/warp_mma.cuh"
#include "sparse_attention/kernels/sparse/tile_boxes.h"
#include "sparse_attention/mask_rule.h"

namespace sattn::kernels::cuda {

namespace {

using flash::apply_mask;
using flash::softmax_update;
using flash::zero_fill;

constexpr int kBM = int(kBlockSparseQTile);   // query rows per CTA
constexpr int kBN = int(kBlockSparseKvTile);  // keys per tile
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kWarpRows = kBM / kWarps;  // 32: two m16 row blocks per warp
static_assert(kWarpRows == 32 && kBN == 64, "the fragment loops and the 64-bit mask assume 32 rows per warp, 64 keys");

using KernelArgs = BlockSparseArgs;

// Element offset of (row, 16-byte chunk) in a [rows, D] shared tile. XOR-ing the chunk with row % 8 spreads
// the eight rows that one ldmatrix phase reads over all 32 banks.
template <int D>
__device__ __forceinline__ int swizzle(int row, int chunk) {
  return row * D + ((chunk ^ (row & 7)) << 3);
}


// Starts the copy of ROWS layout positions from pos0 on (a slice of one batch and head whose tokens are
// `ld` elements apart) into a swizzled shared tile. Positions past the sequence end become zeros.
template <typename T, int D, int ROWS>
__device__ __forceinline__ void load_tile(T* tile, const T* base, int64_t ld, int pos0, const int32_t* perm, int seq_len) {
  constexpr int kChunks = D / 8;
  constexpr int kRowsPerPass = kThreads / kChunks;
  const int chunk = int(threadIdx.x) % kChunks;
#pragma unroll
  for (int i = 0; i < ROWS / kRowsPerPass; ++i) {
    const int row = i * kRowsPerPass + int(threadIdx.x) / kChunks;
    const int pos = pos0 + row;
    const bool valid = pos < seq_len;
    const int64_t token = valid ? natural_token(perm, pos) : 0;
    cp_async_16(tile + swizzle<D>(row, chunk), base + token * ld + chunk * 8, valid);
  }
}

// s = Q[warp rows] · K[tile]ᵀ for the warp's 32 rows and the tile's 64 keys.
template <typename T, int D>
__device__ __forceinline__ void tile_scores(float (&s)[2][kBN / 8][4], const T* qs, const T* ks, int warp, int lane) {
  zero_fill(s);
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    uint32_t a[2][4];
#pragma unroll
    for (int mi = 0; mi < 2; ++mi) ldmatrix_x4(a[mi], qs + swizzle<D>(warp * kWarpRows + mi * 16 + lane % 16, 2 * kk + lane / 16));
#pragma unroll
    for (int nb = 0; nb < kBN / 16; ++nb) {
      uint32_t b[4];  // b[0], b[1]: keys 16nb..+7; b[2], b[3]: keys 16nb+8..+15
      ldmatrix_x4(b, ks + swizzle<D>(nb * 16 + (lane / 16) * 8 + lane % 8, 2 * kk + (lane / 8) % 2));
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
        mma_16x8x16<T>(s[mi][2 * nb], a[mi], b[0], b[1]);
        mma_16x8x16<T>(s[mi][2 * nb + 1], a[mi], b[2], b[3]);
      }
    }
  }
}

// o += P · V[tile]; P comes from the score registers (the accumulator layout of S is the A-fragment layout
// of P once pairs are packed).
template <typename T, int D>
__device__ __forceinline__ void accumulate_pv(float o[2][D / 8][4], const float s[2][kBN / 8][4], const T* vs, int lane) {
#pragma unroll
  for (int kk = 0; kk < kBN / 16; ++kk) {
    uint32_t p[2][4];
#pragma unroll
    for (int mi = 0; mi < 2; ++mi) {
      p[mi][0] = pack2<T>(s[mi][2 * kk][0], s[mi][2 * kk][1]);
      p[mi][1] = pack2<T>(s[mi][2 * kk][2], s[mi][2 * kk][3]);
      p[mi][2] = pack2<T>(s[mi][2 * kk + 1][0], s[mi][2 * kk + 1][1]);
      p[mi][3] = pack2<T>(s[mi][2 * kk + 1][2], s[mi][2 * kk + 1][3]);
    }
#pragma unroll
    for (int db = 0; db < D / 16; ++db) {
      uint32_t b[4];  // b[0], b[1]: columns 16db..+7; b[2], b[3]: columns 16db+8..+15
      ldmatrix_x4_trans(b, vs + swizzle<D>(kk * 16 + ((lane / 8) % 2) * 8 + lane % 8, 2 * db + lane / 16));
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
        mma_16x8x16<T>(o[mi][2 * db], p[mi], b[0], b[1]);
        mma_16x8x16<T>(o[mi][2 * db + 1], p[mi], b[2], b[3]);
      }
    }
  }
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads, 2) block_sparse_kernel(const KernelArgs a) {
  extern __shared__ __align__(128) unsigned char smem[];
  T* qs = reinterpret_cast<T*>(smem);
  T* ks = qs + kBM * D;      // two stages of [kBN, D]
  T* vs = ks + 2 * kBN * D;  // two stages of [kBN, D]
  const auto [qt, h, b] = cta_entry(a);
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  const int q0 = qt * kBM;
  constexpr int kChunks = D / 8;
  T* out = static_cast<T*>(a.out) + (int64_t(b) * a.seq_len * a.heads + h) * D;
  const int64_t out_ld = int64_t(a.heads) * D;
  const int32_t* perm = head_order(a.perm, a.head_perm, a.layout_heads, a.seq_len, h);

  const EntryTiles tiles = entry_tiles(a, b, h, qt);
  const int num_full = tiles.num_full, num_tiles = tiles.num_tiles, partial_begin = tiles.partial_begin;
  auto tile_at = [&](int i) { return tiles.at(i); };

  if (num_tiles == 0) {
    zero_rows<D, kThreads>(out, out_ld, perm, q0, kBM, a.seq_len);
    return;
  }

  const T* qg = static_cast<const T*>(a.q) + b * a.q_stride[0] + h * a.q_stride[2];
  const T* kg = static_cast<const T*>(a.k) + b * a.k_stride[0] + h * a.k_stride[2];
  const T* vg = static_cast<const T*>(a.v) + b * a.v_stride[0] + h * a.v_stride[2];

  // Commit groups in order: {Q, K0}, V0, K1, then per tile i: V[i+1] (after the first barrier) and K[i+2]
  // (after the second). Every wait below leaves the two most recent groups in flight.
  int tile = tile_at(0), next = tile_at(1), after = tile_at(2);
  load_tile<T, D, kBM>(qs, qg, a.q_stride[1], q0, perm, a.seq_len);
  load_tile<T, D, kBN>(ks, kg, a.k_stride[1], tile * kBN, perm, a.seq_len);
  cp_async_commit();
  load_tile<T, D, kBN>(vs, vg, a.v_stride[1], tile * kBN, perm, a.seq_len);
  cp_async_commit();
  if (next >= 0) load_tile<T, D, kBN>(ks + kBN * D, kg, a.k_stride[1], next * kBN, perm, a.seq_len);
  cp_async_commit();

  float o[2][D / 8][4];
  zero_fill(o);
  float m[2][2] = {{-INFINITY, -INFINITY}, {-INFINITY, -INFINITY}}, l[2][2] = {{0.f, 0.f}, {0.f, 0.f}};
  const int last_kv_tile = (a.seq_len - 1) / kBN;
  const bool ragged = a.seq_len % kBN != 0;

  for (int i = 0; i < num_tiles; ++i) {
    const int stage = i & 1;
    cp_async_wait<2>();
    __syncthreads();  // K[i] (and Q) landed for every thread; every warp is done with V[i-1]'s buffer
    if (next >= 0) load_tile<T, D, kBN>(vs + (stage ^ 1) * kBN * D, vg, a.v_stride[1], next * kBN, perm, a.seq_len);
    cp_async_commit();

    // Partial tiles: the rows' masks, read before the scores so that the GEMM hides the load. The ragged
    // last tile: keys past the end.
    const bool partial = i >= num_full, ragged_tile = ragged && tile == last_kv_tile;
    uint64_t rows[4];
    if (partial) {
      const uint64_t* mask = a.partial_masks + int64_t(partial_begin + i - num_full) * kBM + warp * kWarpRows + lane / 4;
#pragma unroll
      for (int r = 0; r < 4; ++r) rows[r] = __ldg(mask + (r / 2) * 16 + (r % 2) * 8);
    } else if (ragged_tile) {
#pragma unroll
      for (int r = 0; r < 4; ++r) rows[r] = (uint64_t(1) << (a.seq_len - tile * kBN)) - 1;
    }
    float s[2][kBN / 8][4];
    tile_scores<T, D>(s, qs, ks + stage * kBN * D, warp, lane);
    if (partial || ragged_tile) apply_mask(s, rows, lane);
    softmax_update<D>(s, o, m, l, a.scale_log2);

    cp_async_wait<2>();
    __syncthreads();  // V[i] landed; every warp is done reading K[i]'s buffer
    if (after >= 0) load_tile<T, D, kBN>(ks + stage * kBN * D, kg, a.k_stride[1], after * kBN, perm, a.seq_len);
    cp_async_commit();
    const int later = tile_at(i + 3);  // read now, used next iteration: the P·V below hides the latency
    accumulate_pv<T, D>(o, s, vs + stage * kBN * D, lane);
    tile = next, next = after, after = later;
  }
  cp_async_wait<0>();

  // Normalize, stage the warp's 32 rows in its own rows of the Q tile (no other warp reads them), then store
  // 16-byte chunks to the rows' natural positions.
  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float sum = l[mi][hh];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const float inv = sum > 0.f ? 1.f / sum : 0.f;  // nothing attended: zeros
      const int row = warp * kWarpRows + mi * 16 + hh * 8 + g;
#pragma unroll
      for (int nd = 0; nd < D / 8; ++nd)
        *reinterpret_cast<uint32_t*>(qs + swizzle<D>(row, nd) + 2 * t) =
            pack2<T>(o[mi][nd][2 * hh] * inv, o[mi][nd][2 * hh + 1] * inv);
    }
  __syncwarp();
#pragma unroll 4
  for (int idx = lane; idx < kWarpRows * kChunks; idx += 32) {
    const int row = warp * kWarpRows + idx / kChunks, chunk = idx % kChunks;
    const int pos = q0 + row;
    if (pos < a.seq_len)
      *reinterpret_cast<uint4*>(out + natural_token(perm, pos) * out_ld + chunk * 8) =
          *reinterpret_cast<const uint4*>(qs + swizzle<D>(row, chunk));
  }
}

template <typename T, int D>
void launch(const rt::Context& ctx, const KernelArgs& a, dim3 grid) {
  constexpr int smem_bytes = (kBM + 4 * kBN) * D * int(sizeof(T));
  DITRUN_CUDA_CHECK(cudaFuncSetAttribute(block_sparse_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes));
  block_sparse_kernel<T, D><<<grid, kThreads, smem_bytes, ctx.cuda().stream>>>(a);
}

// cp.async moves 16-byte chunks: each row's D elements must be contiguous and every row 16-byte aligned.
rt::Tensor loadable(const rt::Context& ctx, const rt::Tensor& t) {
  bool ok = t.strides()[3] == 1 && reinterpret_cast<uintptr_t>(t.raw_data()) % 16 == 0;
  for (int i = 0; i < 3; ++i) ok = ok && (t.size(i) == 1 || t.strides()[i] % 8 == 0);
  if (ok) return t;
  rt::Tensor c = rt::cuda::empty(ctx, t.shape(), t.dtype());
  rt::cuda::copy(ctx, c, t);
  return c;
}

// The element mask of every partial (entry, key tile) slot, from allowed() in natural token indices: one
// block per slot, one thread per query row of the tile; bit c of word [slot·kBM + row] says whether query
// position qt·kBM + row attends key position kt·kBN + c (0 past the sequence end). Computed once per
// upload, so the attention kernel's inner loop reads four words per partial tile instead of evaluating
// allowed() (integer divisions) 64 times per thread.
__global__ void partial_masks_kernel(uint64_t* masks, const int32_t* slot_q_tile, const int32_t* slot_set,
                                     const int32_t* partial_index, const int32_t* perm, int seq_len, const MaskRule rule) {
  const int64_t slot = blockIdx.x;
  const int q_pos = slot_q_tile[slot] * kBM + int(threadIdx.x), k0 = partial_index[slot] * kBN;
  if (perm != nullptr && slot_set != nullptr) perm += int64_t(slot_set[slot]) * seq_len;
  uint64_t bits = 0;
  if (q_pos < seq_len) {
    const int64_t q = perm != nullptr ? perm[q_pos] : q_pos;
    for (int c = 0; c < kBN && k0 + c < seq_len; ++c)
      if (allowed(rule, q, perm != nullptr ? perm[k0 + c] : k0 + c)) bits |= uint64_t(1) << c;
  }
  masks[slot * kBM + threadIdx.x] = bits;
}

}  // namespace

UploadedLayout upload_layout(const rt::Context& ctx, const BlockLayout& layout) {
  // The kernel trusts the lists (tile ids become load addresses), so a malformed layout stops here.
  const std::string bad = validate(layout);
  CHECK(bad.empty(), "block_sparse_attention: invalid layout: ", bad);
  // The query tile (and, with per-head perms, the perm set) of each partial slot, for the mask kernel.
  const bool per_head = !layout.head_perm.empty();
  std::vector<int32_t> slot_q_tile(layout.partial_index.size()), slot_set(per_head ? layout.partial_index.size() : 0);
  for (int64_t e = 0; e < layout.entries(); ++e)
    for (int32_t j = layout.partial_offsets[size_t(e)]; j < layout.partial_offsets[size_t(e) + 1]; ++j) {
      slot_q_tile[size_t(j)] = int32_t(e % layout.num_q_tiles());
      if (per_head) slot_set[size_t(j)] = layout.head_perm[size_t((e / layout.num_q_tiles()) % layout.heads)];
    }
  const std::vector<int32_t>* parts[8] = {&layout.perm,          &layout.full_offsets,  &layout.full_index,
                                          &layout.partial_offsets, &layout.partial_index, &slot_q_tile,
                                          &slot_set,             &layout.head_perm};
  std::vector<int32_t> host;
  size_t at[8];
  for (int i = 0; i < 8; ++i) {
    at[i] = host.size();
    host.insert(host.end(), parts[i]->begin(), parts[i]->end());
  }
  CHECK(host.size() == upload_words(layout), "upload_layout: ", host.size(), " words, expected ", upload_words(layout));
  UploadedLayout d;
  d.buffer = rt::cuda::empty(ctx, {std::max<int64_t>(int64_t(host.size()), 1)}, rt::DType::F32);
  // From pageable memory the copy returns once `host` is staged, so it may go out of scope.
  DITRUN_CUDA_CHECK(cudaMemcpyAsync(d.buffer.raw_data(), host.data(), host.size() * sizeof(int32_t),
                                    cudaMemcpyHostToDevice, ctx.cuda().stream));
  const int32_t* base = static_cast<const int32_t*>(d.buffer.raw_data());
  d.perm = layout.perm.empty() ? nullptr : base + at[0];
  d.full_offsets = base + at[1], d.full_index = base + at[2];
  d.partial_offsets = base + at[3], d.partial_index = base + at[4];
  d.head_perm = per_head ? base + at[7] : nullptr;
  d.words = host.size();
  const int64_t slots = int64_t(layout.partial_index.size());
  d.masks = rt::cuda::empty(ctx, {std::max<int64_t>(slots, 1) * kBM}, rt::DType::I64);
  d.partial_masks = static_cast<const uint64_t*>(d.masks.raw_data());
  if (slots > 0) {
    partial_masks_kernel<<<unsigned(slots), kBM, 0, ctx.cuda().stream>>>(static_cast<uint64_t*>(d.masks.raw_data()),
                                                                          base + at[5], per_head ? base + at[6] : nullptr,
                                                                          d.partial_index, d.perm,
                                                                          int(layout.seq_len), layout.rule);
    rt::cuda::check_launch(ctx, "block_sparse_attention.partial_masks");
    PackedKeys packed = pack_partial_keys(ctx, d.partial_offsets, d.partial_index, d.partial_masks, d.perm,
                                          per_head ? base + at[6] : nullptr, layout.entries(), slots,
                                          int(layout.num_q_tiles()), int(layout.seq_len));
    d.packed_entry_buf = std::move(packed.entry), d.packed_keys_buf = std::move(packed.keys);
    d.packed_entry = static_cast<const int32_t*>(d.packed_entry_buf.raw_data());
    d.packed_keys = static_cast<const int32_t*>(d.packed_keys_buf.raw_data());
  }
  const TileBoxes boxes = tile_boxes(layout);
  d.boxes_usable = boxes.usable;
  for (int a = 0; a < 3; ++a) d.q_box[a] = boxes.q_box[a], d.kv_box[a] = boxes.kv_box[a];
  if (boxes.usable && !boxes.q_desc.empty()) {
    std::vector<int32_t> desc = boxes.q_desc;
    desc.insert(desc.end(), boxes.kv_desc.begin(), boxes.kv_desc.end());
    d.box_desc_buf = rt::cuda::empty(ctx, {int64_t(desc.size())}, rt::DType::F32);
    DITRUN_CUDA_CHECK(cudaMemcpyAsync(d.box_desc_buf.raw_data(), desc.data(), desc.size() * sizeof(int32_t),
                                      cudaMemcpyHostToDevice, ctx.cuda().stream));
    d.q_box_desc = static_cast<const int32_t*>(d.box_desc_buf.raw_data());
    d.kv_box_desc = d.q_box_desc + boxes.q_desc.size();
  }
  return d;
}

namespace {

// Launches the kernel on lists `dl` already on the device.
rt::Tensor run(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& layout, const UploadedLayout& dl) {
  std::string why;
  const std::optional<SparseKernel> chosen = select_block_sparse_kernel(ctx, p, layout, &why);
  CHECK(chosen.has_value(), "block_sparse_attention: q ", p.q.str(), " k ", p.k.str(), " v ", p.v.str(), ": ", why);
  const SparseKernel kernel = *chosen;
  const int64_t batch = p.q.size(0), len = p.q.size(1), heads = p.q.size(2), d = p.q.size(3);
  const float scale = p.scale != 0.f ? p.scale : 1.f / std::sqrt(float(d));
  CHECK(scale > 0.f && std::isfinite(scale), "block_sparse_attention: softmax scale ", scale, " must be positive");
  rt::Tensor out = rt::cuda::empty(ctx, {batch, len, heads, d}, p.q.dtype());
  if (out.numel() == 0) return out;

  const rt::Tensor q = loadable(ctx, p.q), k = loadable(ctx, p.k), v = loadable(ctx, p.v);
  KernelArgs a{};
  a.q = q.raw_data(), a.k = k.raw_data(), a.v = v.raw_data(), a.out = out.raw_data();
  for (int i = 0; i < 3; ++i) a.q_stride[i] = q.strides()[i], a.k_stride[i] = k.strides()[i], a.v_stride[i] = v.strides()[i];
  a.seq_len = int(len), a.heads = int(heads), a.num_q_tiles = int(layout.num_q_tiles());
  a.layout_batch = int(layout.batch), a.layout_heads = int(layout.heads);
  a.perm = dl.perm, a.head_perm = dl.head_perm, a.full_offsets = dl.full_offsets, a.full_index = dl.full_index;
  a.partial_offsets = dl.partial_offsets, a.partial_index = dl.partial_index, a.partial_masks = dl.partial_masks;
  a.packed_entry = dl.packed_entry, a.packed_keys = dl.packed_keys;
  a.tma_boxes = dl.boxes_usable, a.q_box_desc = dl.q_box_desc, a.kv_box_desc = dl.kv_box_desc;
  const TokenLayout& tokens = layout.rule.tokens;
  a.grid_t = int(tokens.grid[0]), a.grid_h = int(tokens.grid[1]), a.grid_w = int(tokens.grid[2]);
  a.grid_begin = int(tokens.grid_begin());
  for (int i = 0; i < 3; ++i) a.q_box[i] = int(dl.q_box[i]), a.kv_box[i] = int(dl.kv_box[i]);
  a.scale_log2 = scale * 1.44269504088896341f;  // log2(e)
  // Heavy entries first (entry_order.h); `order` stays alive until the kernel is queued behind it.
  const rt::Tensor order = order_entries(ctx, a, int64_t(a.num_q_tiles) * heads * batch,
                                         int((len + kBN - 1) / kBN));
  a.entry_order = static_cast<const int32_t*>(order.raw_data());
  const bool bf16 = p.q.dtype() == rt::DType::BF16;
  if (kernel == SparseKernel::Sm90) {
    launch_block_sparse_sm90(ctx, a, bf16, int(d), unsigned(a.num_q_tiles), unsigned(heads), unsigned(batch));
    return out;
  }
  if (kernel == SparseKernel::Sm90Ws) {
    launch_block_sparse_sm90ws(ctx, a, bf16, int(d), unsigned(a.num_q_tiles), unsigned(heads), unsigned(batch));
    return out;
  }
  const dim3 grid{unsigned(a.num_q_tiles), unsigned(heads), unsigned(batch)};
  if (d == 64) bf16 ? launch<__nv_bfloat16, 64>(ctx, a, grid) : launch<__half, 64>(ctx, a, grid);
  else bf16 ? launch<__nv_bfloat16, 128>(ctx, a, grid) : launch<__half, 128>(ctx, a, grid);
  rt::cuda::check_launch(ctx, "block_sparse_attention");
  return out;
}

}  // namespace

std::string block_sparse_sm90_refusal(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& layout) {
  const std::string refusal = block_sparse_refusal(p, layout);
  return refusal.empty() ? block_sparse_sm90_device_refusal(ctx) : refusal;
}

std::optional<SparseKernel> select_block_sparse_kernel(const rt::Context& ctx, const AttentionParams& p,
                                                       const BlockLayout& layout, std::string* why) {
  std::string local;
  std::string& reason = why != nullptr ? *why : local;
  reason = block_sparse_refusal(p, layout);
  if (!reason.empty()) return std::nullopt;
  switch (p.sparse_kernel) {
    case SparseKernel::Sm80: return SparseKernel::Sm80;
    case SparseKernel::Sm90:
    case SparseKernel::Sm90Ws:  // same device requirements
      reason = block_sparse_sm90_device_refusal(ctx);
      if (!reason.empty()) return std::nullopt;
      return p.sparse_kernel;
    case SparseKernel::Auto:
      reason = block_sparse_sm90_device_refusal(ctx);
      return reason.empty() ? SparseKernel::Sm90Ws : SparseKernel::Sm80;
  }
  reason = "unknown block-sparse kernel";
  return std::nullopt;
}

rt::Tensor block_sparse_attention(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& layout,
                                  const UploadedLayout* uploaded) {
  const std::string refusal = block_sparse_refusal(p, layout);
  CHECK(refusal.empty(), "block_sparse_attention: q ", p.q.str(), " k ", p.k.str(), " v ", p.v.str(), ": ", refusal);
  if (p.q.numel() == 0) return rt::cuda::empty(ctx, {p.q.size(0), p.q.size(1), p.q.size(2), p.q.size(3)}, p.q.dtype());
  UploadedLayout fresh;
  if (uploaded == nullptr) fresh = upload_layout(ctx, layout);
  const UploadedLayout& dl = uploaded != nullptr ? *uploaded : fresh;
  const size_t words = upload_words(layout);
  CHECK(dl.words == words && (dl.perm == nullptr) == layout.perm.empty() &&
            (dl.head_perm == nullptr) == layout.head_perm.empty(),
        "block_sparse_attention: the uploaded layout (",
        dl.words, " words) was not made from this layout (", words, " words)");
  return run(ctx, p, layout, dl);
}

rt::Tensor block_sparse_attention_planned(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& shape,
                                          const UploadedLayout& lists) {
  CHECK(lists.full_offsets != nullptr && lists.partial_offsets != nullptr,
        "block_sparse_attention_planned: the device lists are missing");
  return run(ctx, p, shape, lists);
}

}  // namespace sattn::kernels::cuda
