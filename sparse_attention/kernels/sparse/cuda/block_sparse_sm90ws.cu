// Block-sparse flash attention on Hopper, warp-specialized (wgmma, sm_90a only; SparseKernel::Sm90Ws,
// "sm90ws", what `auto` runs on Hopper). Same contract and arguments as block_sparse_sm90.cu, whose per-tile
// steps it reuses (sm90_steps.cuh, sm90_tile.cuh), but it walks an entry's key tiles two at a time: step j
// puts the entry's tiles 2j and 2j+1 (any two, the list need not be contiguous) side by side in one 128-key
// stage, and runs one m64n128 S MMA, one softmax update and one P·V MMA over them. That halves everything a
// kernel pays per step rather than per key (barrier waits, turns, stage releases, mask decisions, MMA issue,
// the row reductions' shuffles and the rescale check): session 10's ncu showed the one-tile kernel
// issue-bound, and on the H200 the two-tile steps took 0.89-0.92x its time (session 11). An odd tile count
// leaves the last step's second half empty: zero-filled, masked. The online softmax then updates its maximum
// per 128 keys, so the output is no longer bit-identical to the sm80 and sm90 kernels' (same tolerance to the
// CPU reference; relative L2 to cuDNN 7e-5 against 9e-4).
// Packed keys (packed_keys.h): where every query row of an entry's partial tiles has the same mask (GNA with a
// stride that holds the query tile), upload_layout lists the allowed keys of those tiles, and the entry's
// slots are its full tiles, then its packed keys 64 to a slot; a packed slot goes through the same gathers and
// steps as a tile, unmasked but for the last one's tail. Masked-out keys are neither loaded nor multiplied:
// Flux 2048² GNA 1x40x40 / 16 took 0.90x the time of the tiles (session 13). A layout without packed entries
// runs the kernel instantiated without that path (kPacked = false).
//  - warpgroup 0 (128 threads, setmaxnreg 56) only loads, into a ring of kWsStages stages (3 at D = 128, 4 at
//    D = 64), as far ahead of the consumers as the ring allows. Where every tile of the layout is a run of
//    tokens or a grid box (tile_boxes.h: the identity order, and Flux's GNA and GRAT boxes) and the layout
//    has no partial tile (with one, upload_layout sets packed_entry, as only the device knows which entries
//    pack: HunyuanVideo's padded text makes one even in dense), its thread 0 copies each tile of Q, K and V
//    with D / 64 TMA boxes (kTma, WsMaps): maps of runs [D, L, heads, batch] and of grid boxes
//    [D, W, H, heads, batch] (or [D, W, H, T, heads] for a video of batch 1), each step's descriptors and
//    coordinates read before it waits for the step's stage.
//    Session 22: 9-10% faster than the gathers on Flux's dense, GNA and GRAT rows (reading the descriptor
//    after the wait, on the critical path, had made the sparse rows 0-2% slower). Otherwise its 128 threads
//    do the perm look-ups and the 16-byte cp.async row gathers of Q and of every step's K and V rows;
//  - warpgroups 1 and 2 (setmaxnreg 224) own 64 query rows each and only compute, with the sm90 kernel's
//    intra-warpgroup overlap (issue S(i) and P(i-1)·V(i-1), wait for S(i), softmax while P·V runs). They read
//    the partial tiles' mask words themselves (two words per thread and tile, one step ahead);
//  - the two consumer warpgroups take turns issuing their MMAs (ping-pong, FA3's schedule), so one's
//    softmax overlaps the other's GEMMs. The kernel keeps it a run-time argument (kPingPong below): on the
//    H200 both settings passed every test and ping-pong took 0.98-1.01x the time without it.
//
// Protocol (all mbarriers in shared memory, initialized by thread 0 before the CTA's one __syncthreads):
//   q_full            count 128: each producer thread's cp.async.mbarrier.arrive.noinc after its Q rows (TMA:
//                     count 1, thread 0's arrival after its copies, with their bytes expected). The same for
//                     k_full and v_full. One phase; consumers wait parity 0.
//   k_full[s], v_full[s]   count 128, the same noinc arrival after a thread's K (V) rows of the step in
//                     stage s. Step j lives in stage s = j % S (S = kWsStages) as the stage's use u = j / S; its
//                     fill completes phase u of k_full[s] / v_full[s]; consumers wait parity u & 1.
//   k_empty[s], v_empty[s] count 8: lane 0 of each of the 8 consumer warps, once the MMAs of its warpgroup
//                     that read the stage retired (K(j): after the wgmma wait that retires S(j); V(j): after
//                     the one that retires P(j)·V(j)). Releasing step j completes phase u of the barrier. The
//                     producer fills step j >= S only after waiting for phase u - 1 (parity (u-1) & 1), the
//                     release of step j - S; steps j < S go into never-used stages unwaited.
// No phase can be overtaken (parity aliasing): fill j + S needs the release of step j by all 8 warps, each
// of which waited for fill j first; release j + S needs fill j + S, which the producer issues only after
// waiting for release j. The producer waits only for releases of steps j - S with j < num_steps, which
// every consumer warp performs (it visits every step), so it never waits for an arrival that will not come;
// consumers also release the last S steps (phases nobody waits for). A CTA with no key tile writes zeros
// and exits before any barrier is touched. Nothing else is CTA-wide after the init: the producer returns
// when its last copies landed, the consumers' epilogue synchronizes each warpgroup alone.
//   cp.async writes through the generic proxy and wgmma reads through the async proxy: each consumer thread
// issues fence.proxy.async after its full-barrier wait (which acquires the copies) and before its MMAs (not
// after TMA copies, which write through the async proxy).
//   Ping-pong: named barriers kBarTurn + c (256 threads: warpgroup c's bar.sync + the other's bar.arrive).
// Consumer c syncs on its own barrier before each of its num_steps + 1 MMA issues and arrives on the other's
// after it; consumer 1 arrives once on consumer 0's barrier at the start (consumer 0 goes first) and skips
// its arrive after its last issue, so both barriers see exactly num_steps + 1 syncs and arrives. A turn
// waits only for the other warpgroup's previous issue, and that issue's stage waits need releases of steps
// at least S - 1 older than the waiting warpgroup's current one, which it has made: no cycle. Epilogue:
// named barrier kBarStore + c (128 threads), each warpgroup stages and stores its own 64 rows.
//
// Unlike the sm90 kernel, the consumers skip O's rescale when no row of a warp has a new maximum, decide a
// step of full tiles without a load (step_masks), and the producer's copies cost three instructions a row
// (session 10: the one-tile kernel was issue-bound, the producer's address arithmetic a third of its
// instructions). Q stays in shared memory (SS S MMA): the 64 S accumulators of a 128-key step took the
// registers that held it in registers in the one-tile kernel.
//
// nvcc 13.0: 168 registers per thread at launch (then 56 for the producer, 224 for the consumers), no
// serialized wgmma, no spills but 8 bytes in the packed-keys D = 128 instances' producer, stored and reloaded
// once per CTA around its first look-ups (scripts/check_ptxas.py lists them; SASS, session 21); 230504 / 148616 bytes of shared memory at D = 128 / 64 (tiles, 1 KiB of
// alignment, the barriers); one CTA per SM.
//
// Only the sm_90a pass compiles the body; block_sparse_sm90_device_refusal guards every launch.
#include <cuda_runtime_api.h>

#include <climits>
#include <cstdint>

#include "cuda/common.cuh"
#include "cuda/cuda_ops.h"
#include "cuda/device_state.h"
#include "sparse_attention/kernels/sparse/cuda/block_sparse_sm90.h"
#include "sparse_attention/kernels/sparse/cuda/sm90_steps.cuh"
#include "sparse_attention/kernels/sparse/cuda/tma.cuh"
#include "sparse_attention/kernels/sparse/cuda/ws_sync.cuh"

namespace sattn::kernels::cuda {

// The helpers live in a named namespace: the sm_80 PTX pass compiles the kernel body out, and file-local
// functions it no longer calls would be reported as unused.
namespace sm90ws {

using namespace cute;
using namespace ws;
using sm90::kBM;
using sm90::kBN;

inline constexpr int kWsThreads = 384;  // producer warpgroup + two consumer warpgroups
inline constexpr int kProducerThreads = 128;
inline constexpr int kConsumerWarps = 8;
// Keys per step: two layout tiles side by side (see the header).
inline constexpr int kKN = 2 * kBN;
// 128·56 + 256·224 = 64512 = 384·168, the pool the CTA launches with. The consumers hold S (64), P (32) and
// O (D / 2) per thread; the producer's look-ups fit in 56.
inline constexpr int kProducerRegs = 56, kConsumerRegs = 224;
static_assert(128 * kProducerRegs + 256 * kConsumerRegs == 64512, "the launch's register pool");
inline constexpr int kBarTurn = 1, kBarStore = 3;  // named barriers 1-2 and 3-4 (0 is __syncthreads)
// Ping-pong between the consumer warpgroups (session 9, H200, Flux 4096²: 122.4 / 14.67 / 7.12 ms on dense,
// GNA and GRAT-B layouts with it, 124.1 / 14.92 / 7.26 ms without).
inline constexpr bool kPingPong = true;

// As many stages as Hopper's 227 KiB holds next to Q: a gathered step's latency is that of its slowest row.
template <int D>
inline constexpr int kWsStages = D == 128 ? 3 : 4;

// The producer's row gathers: thread p of the producer copies 16-byte chunk p % (D / 8) of rows p / (D / 8)
// + i·R of a tile (R = 128 / (D / 8) rows per pass). ws_tokens issues the perm look-ups of those rows, ws_copy
// their copies. The address arithmetic is most of the producer's instructions, which share the issue slots
// with the consumers' softmax, so everything that does not change between tiles is computed once
// (WsRowCopier): a swizzle atom is 8 rows of 128 bytes and the tiles stack atoms along the rows, so a chunk's
// shared offset depends on its row modulo 8 and steps by a constant from pass to pass; the global offset of
// a row is one 32x32->64-bit multiply-add. Positions past the sequence end read the last row's address and
// land as zeros (0 · NaN in P·V would poison a row).
template <int D, int ROWS>
inline constexpr int kWsPasses = ROWS / (kProducerThreads / (D / 8));

// Row r's token is table[min(pos0 + r, last)] (table = nullptr: the index itself): a tile's rows through the
// head's perm (last = the sequence's last position), or a packed slot's keys, which are tokens already.
template <int D, int ROWS>
__device__ __forceinline__ void ws_tokens(int32_t (&token)[kWsPasses<D, ROWS>], int pos0, int last,
                                          const int32_t* table, int p) {
  constexpr int kRowsPerPass = kProducerThreads / (D / 8);
  const int row0 = p / (D / 8);
#pragma unroll
  for (int i = 0; i < kWsPasses<D, ROWS>; ++i) {
    const int pos = min(pos0 + i * kRowsPerPass + row0, last);
    token[i] = table != nullptr ? __ldg(table + pos) : pos;
  }
}

// An entry as this kernel walks it: slots [0, num_real) are layout tiles (the entry's list positions, full
// tiles first), slots [num_real, num_slots) its packed keys, kBN to a slot (packed_keys.h; num_real is then
// the number of full tiles, and the partial tiles are not walked). Offsets into the kernel arguments' lists
// rather than pointers: the producer has 56 registers.
struct WsVisit {
  int full_begin, partial_begin, num_full, num_real, keys_begin, num_keys, num_slots;
  // The layout tile of slot i < num_real.
  __device__ __forceinline__ int tile(const BlockSparseArgs& a, int i) const {
    return i < num_full ? __ldg(a.full_index + full_begin + i) : __ldg(a.partial_index + partial_begin + i - num_full);
  }
};

template <bool kPacked>
__device__ __forceinline__ WsVisit ws_visit(const BlockSparseArgs& a, int b, int h, int qt) {
  const int64_t e = entry_index(a, b, h, qt);
  WsVisit v;
  v.full_begin = a.full_offsets[e], v.partial_begin = a.partial_offsets[e];
  v.num_full = a.full_offsets[e + 1] - v.full_begin;
  v.num_real = v.num_full + a.partial_offsets[e + 1] - v.partial_begin;
  v.keys_begin = 0, v.num_keys = 0;
  if (kPacked) {
    const int count = __ldg(a.packed_entry + 2 * e + 1);
    if (count >= 0) v.keys_begin = __ldg(a.packed_entry + 2 * e), v.num_keys = count, v.num_real = v.num_full;
  }
  v.num_slots = v.num_real + (v.num_keys + kBN - 1) / kBN;
  return v;
}

// The perm look-ups of slot i's rows (ws_tokens); returns how many of them are real: a tile's rows before
// the sequence end, a packed slot's keys, none past the entry's slots (the copies zero-fill the rest).
template <int D, bool kPacked>
__device__ __forceinline__ int ws_slot_tokens(int32_t (&token)[kWsPasses<D, kBN>], const BlockSparseArgs& a,
                                              const WsVisit& v, int i, const int32_t* perm, int p) {
  // One call for the three kinds of slot, so that the look-ups are issued from one place.
  int pos0 = 0, last = a.seq_len - 1, valid = 0;
  const int32_t* table = perm;
  if (i < v.num_real) {
    pos0 = v.tile(a, i) * kBN, valid = a.seq_len - pos0;
  } else if (kPacked && i < v.num_slots) {
    pos0 = v.keys_begin + (i - v.num_real) * kBN, last = v.keys_begin + v.num_keys - 1, valid = last + 1 - pos0;
    table = a.packed_keys;
  }
  ws_tokens<D, kBN>(token, pos0, last, table, p);
  return valid;
}

template <int D>
struct WsRowCopier {
  static constexpr int kChunks = D / 8, kRowsPerPass = kProducerThreads / kChunks;
  // A swizzle atom is 8 rows of 128 bytes and the tiles stack atoms along the rows first (sm90_tile.cuh), so
  // a pass further down is this many bytes on, whatever the chunk: an immediate offset of the copies.
  static_assert(kRowsPerPass % 8 == 0, "passes a whole number of swizzle atoms apart");
  static constexpr uint32_t kPassBytes = kRowsPerPass * 128;
  uint32_t shared0;  // byte offset in a tile of this thread's first chunk
  int row0, chunk_bytes;

  template <class Tile>
  __device__ __forceinline__ static WsRowCopier make(const Tile& tile, int p) {
    const uint32_t base = smem_address(raw_pointer_cast(&tile(0, 0)));
    WsRowCopier c;
    c.row0 = p / kChunks;
    c.chunk_bytes = (p % kChunks) * 16;
    c.shared0 = smem_address(raw_pointer_cast(&tile(c.row0, (p % kChunks) * 8))) - base;
    // The layout assumption above, checked once against CuTe's own offsets.
    if (smem_address(raw_pointer_cast(&tile(c.row0 + kRowsPerPass, (p % kChunks) * 8))) - base - c.shared0 != kPassBytes)
      __trap();
    return c;
  }

  // The rows of one tile into the tile at shared address `dst` from `base` (the head's first row, rows
  // ld_bytes apart); rows at or past `valid_rows` become zeros. Tokens and strides are non-negative and
  // below 2^31, so a row's offset is one 32x32->64-bit multiply-add.
  template <int ROWS>
  __device__ __forceinline__ void copy(uint32_t dst, const void* base, uint32_t ld_bytes,
                                       const int32_t (&token)[kWsPasses<D, ROWS>], int valid_rows) const {
    const char* src = static_cast<const char*>(base) + chunk_bytes;
    // Opaque to the compiler, so that each row's address is one multiply-add onto it rather than a
    // multiply-add and a 64-bit add of the base.
    asm("mov.b64 %0, %0;" : "+l"(src));
    dst += shared0;
    if (valid_rows >= ROWS) {  // every tile but the ragged last one: no predicates
#pragma unroll
      for (int i = 0; i < kWsPasses<D, ROWS>; ++i)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst + i * kPassBytes),
                     "l"(src + uint64_t(uint32_t(token[i])) * ld_bytes));
    } else {
#pragma unroll
      for (int i = 0; i < kWsPasses<D, ROWS>; ++i)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst + i * kPassBytes),
                     "l"(src + uint64_t(uint32_t(token[i])) * ld_bytes),
                     "r"(i * kRowsPerPass + row0 < valid_rows ? 16 : 0));
    }
  }
};

// sm90::store_rows for one warpgroup (wtid = thread within it): the same staging and stores, its own 64
// rows, synchronized by its own named barrier.
template <typename T, int D, class O, class QTile>
__device__ __forceinline__ void store_rows_wg(const O& o, const float (&l)[2], QTile& sQ, T* out, int64_t out_ld,
                                              const int32_t* perm, int q0, int seq_len, int row_base, int t, int cw,
                                              int wtid) {
  sm90::stage_rows<T, D>(o, l, sQ, row_base, t);
  bar_sync(kBarStore + cw, 128);
  sm90::store_staged<T, D>(sQ, out, out_ld, perm, q0, seq_len, 64 * cw, 64, wtid, 128);
}

// Slot of the sequence's last key tile when that tile is ragged (the sequence ends inside it) and walked as
// a tile, else -1. Both lists are strictly ascending (block_layout.h), so the last tile can only be the last
// full or the last partial one (a packed tile's keys past the end are masked out, so not packed).
__device__ __forceinline__ int ragged_position(const BlockSparseArgs& a, const WsVisit& v) {
  if (a.seq_len % kBN == 0) return -1;
  const int last = (a.seq_len - 1) / kBN;
  if (v.num_full > 0 && v.tile(a, v.num_full - 1) == last) return v.num_full - 1;
  if (v.num_real > v.num_full && v.tile(a, v.num_real - 1) == last) return v.num_real - 1;
  return -1;
}

// The allowed keys of this thread's two rows in step `step`, whose H = kKN / kBN slots sit side by side:
// rows[2e + r] for slot H·step + e: a partial tile's row masks, the ragged last tile's keys before the
// sequence end (at slot `ragged`), the keys of the last packed slot, none for a slot past the entry's end
// (an odd count leaves the last step half empty; the producer zero-fills it), else all. Returns whether any
// key can be masked. A step of full tiles or whole packed slots, the common case, decides that without a
// load (the branch is uniform).
template <int H, bool kPacked>
__device__ __forceinline__ bool step_masks(uint64_t (&rows)[2 * H], const BlockSparseArgs& a, const WsVisit& v,
                                           int step, int ragged, int row_base) {
  const int i0 = H * step;
  const int packed_tail = v.num_keys % kBN;  // keys in the last packed slot when it is not whole
  if ((i0 + H <= v.num_full && (ragged < i0 || ragged >= i0 + H)) ||
      (kPacked && i0 >= v.num_real && i0 + H <= v.num_slots - (packed_tail != 0))) {
#pragma unroll
    for (int w = 0; w < 2 * H; ++w) rows[w] = ~uint64_t(0);
    return false;
  }
  bool masked = false;
#pragma unroll
  for (int e = 0; e < H; ++e) {
    const int i = i0 + e;
    uint64_t r0 = ~uint64_t(0), r1 = ~uint64_t(0);
    if (i >= v.num_slots) {
      r0 = r1 = 0, masked = true;
    } else if (kPacked && i >= v.num_real) {
      if (i == v.num_slots - 1 && packed_tail != 0) r0 = r1 = (uint64_t(1) << packed_tail) - 1, masked = true;
    } else if (i >= v.num_full) {
      const uint64_t* mask = a.partial_masks + int64_t(v.partial_begin + i - v.num_full) * kBM + row_base;
      r0 = __ldg(mask), r1 = __ldg(mask + 8), masked = true;
    } else if (i == ragged) {
      r0 = r1 = (uint64_t(1) << (a.seq_len % kBN)) - 1, masked = true;
    }
    rows[2 * e] = r0, rows[2 * e + 1] = r1;
  }
  return masked;
}

// The TMA copies of q, k and v (tile_boxes.h): per operand a map of runs of tokens, [D, L, heads, batch], and
// a map of the grid's boxes, [D, W, H, heads, batch] for images (T = 1) or [D, W, H, T, heads] for a video of
// batch 1, each in boxes of one tile (64 channels wide: one column of swizzle atoms per copy).
struct WsMaps {
  CUtensorMap q_run, q_grid, k_run, k_grid, v_run, v_grid;
};

// Where one tile (ROWS layout positions) comes from: its descriptor (descs nullptr: the identity order, tile
// i the run from token i · ROWS) as a map choice and coordinates. Looked up before the wait for the stage,
// so that the look-ups' latency hides behind it (as the gathers' perm look-ups do).
struct WsTmaBox {
  bool in_grid;
  int c1, c2, c3, c4;
};
template <int ROWS>
__device__ __forceinline__ WsTmaBox ws_tma_box(const BlockSparseArgs& a, const int32_t* descs, int tile, int h, int b) {
  const int32_t desc = descs != nullptr ? __ldg(descs + tile) : tile * ROWS;
  WsTmaBox x{desc < 0, desc & 0x7fffffff, h, b, 0};  // bit 31: kTileBoxGridBit
  if (x.in_grid) {
    const int g = x.c1 - a.grid_begin, r = g / a.grid_w;
    x.c1 = g - r * a.grid_w, x.c2 = r % a.grid_h;
    if (a.grid_t == 1) x.c3 = h, x.c4 = b;
    else x.c3 = r / a.grid_h, x.c4 = h;
  }
  return x;
}

// The tile at `x` into the tile at shared address dst, whose columns of swizzle atoms are column_bytes apart:
// D / 64 copies, counted on bar.
template <int D>
__device__ __forceinline__ void ws_tma_copy(uint32_t dst, uint32_t column_bytes, const CUtensorMap& run,
                                            const CUtensorMap& grid, const WsTmaBox& x, uint64_t* bar) {
#pragma unroll
  for (int col = 0; col < D / 64; ++col)
    tma::load_5d(dst + col * column_bytes, x.in_grid ? grid : run, col * 64, x.c1, x.c2, x.c3, x.c4, bar);
}

}  // namespace sm90ws

namespace {

using namespace cute;
using namespace sm90ws;

template <typename T, int D>
struct WsSmem {
  static constexpr int kStages = kWsStages<D>;
  static constexpr int kBarriers = 1 + 4 * kStages;
  static constexpr int bytes() { return sm90::Tiles<T, D, kKN>::smem_bytes(kStages) + 8 * kBarriers; }
};

template <typename T, int D, bool kPacked, bool kTma>
__global__ void __launch_bounds__(kWsThreads, 1)
    block_sparse_sm90ws_kernel(const BlockSparseArgs a, const bool pingpong, const __grid_constant__ WsMaps maps) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Tiles = sm90::Tiles<T, D, kKN>;
  using E = typename Tiles::E;
  constexpr int S = kWsStages<D>;
  constexpr int H = kKN / kBN;  // layout tiles per step
  extern __shared__ unsigned char smem_raw[];
  const uint32_t misalign = smem_address(smem_raw) & 1023u;
  E* qs = reinterpret_cast<E*>(smem_raw + (misalign == 0 ? 0 : 1024 - misalign));
  E* ks = qs + Tiles::kQElems;       // S stages of [kKN, D]
  E* vs = ks + S * Tiles::kKVElems;  // S stages of [kKN, D]
  uint64_t* q_full = reinterpret_cast<uint64_t*>(vs + S * Tiles::kKVElems);
  uint64_t* k_full = q_full + 1;
  uint64_t* v_full = k_full + S;
  uint64_t* k_empty = v_full + S;
  uint64_t* v_empty = k_empty + S;
  Tensor sQ = make_tensor(make_smem_ptr(qs), typename Tiles::Q{});
  auto k_stage = [&](int s) { return make_tensor(make_smem_ptr(ks + s * Tiles::kKVElems), typename Tiles::KV{}); };
  auto vt_stage = [&](int s) { return make_tensor(make_smem_ptr(vs + s * Tiles::kKVElems), typename Tiles::Vt{}); };

  const auto [qt, h, b] = cta_entry(a);
  const int tid = int(threadIdx.x), lane = tid % 32;
  const int q0 = qt * kBM;
  T* out = static_cast<T*>(a.out) + (int64_t(b) * a.seq_len * a.heads + h) * D;
  const int64_t out_ld = int64_t(a.heads) * D;
  const int32_t* perm = head_order(a.perm, a.head_perm, a.layout_heads, a.seq_len, h);

  const WsVisit visit = ws_visit<kPacked>(a, b, h, qt);
  const int num_steps = (visit.num_slots + H - 1) / H;
  if (visit.num_slots == 0) {  // CTA-uniform: nobody has touched a barrier yet
    zero_rows<D, kWsThreads>(out, out_ld, perm, q0, kBM, a.seq_len);
    return;
  }
  if (tid == 0) {
    // Gathers: each producer thread's arrival once its copies landed; TMA: the one thread's, and the bytes.
    constexpr int kFills = kTma ? 1 : kProducerThreads;
    mbar_init(q_full, kFills);
    for (int s = 0; s < S; ++s) {
      mbar_init(k_full + s, kFills), mbar_init(v_full + s, kFills);
      mbar_init(k_empty + s, kConsumerWarps), mbar_init(v_empty + s, kConsumerWarps);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();  // the last CTA-wide barrier: the producer leaves before the consumers' epilogue

  if (tid < kProducerThreads) {
    // ---- Producer: step j's H tiles (one set of look-ups for K and V) go to stage j % S, side by side,
    // once its previous occupant, step j - S, is released.
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegs));
    constexpr uint32_t kStageBytes = Tiles::kKVElems * sizeof(T);
    if constexpr (kTma) {
      // Every tile is a run or a grid box (no packed slots): thread 0 copies each with D / 64 TMA boxes. A
      // step's empty second slot gets its first tile again: masked (p = 0), and finite, as 0 · NaN is NaN.
      if (tid != 0) return;
      tma::expect_bytes(q_full, Tiles::kQElems * sizeof(T));
      ws_tma_copy<D>(smem_address(qs), kBM * 128, maps.q_run, maps.q_grid, ws_tma_box<kBM>(a, a.q_box_desc, qt, h, b),
                     q_full);
      tma::arrive(q_full);
      const uint32_t k_base = smem_address(ks), v_base = smem_address(vs);
      uint32_t s_off = 0;
      int s = 0, use = 0;
      for (int j = 0; j < num_steps; ++j) {
        WsTmaBox x[H];
#pragma unroll
        for (int e = 0; e < H; ++e)
          x[e] = ws_tma_box<kBN>(a, a.kv_box_desc, visit.tile(a, H * j + e < visit.num_slots ? H * j + e : H * j), h, b);
        // K, then V: wait for the stage's release, then the step's tiles into it.
        auto fill = [&](uint64_t* empty, uint64_t* full, uint32_t base, const CUtensorMap& run, const CUtensorMap& grid) {
          if (use > 0) mbar_wait(empty + s, (use - 1) & 1);
          tma::expect_bytes(full + s, kStageBytes);
#pragma unroll
          for (int e = 0; e < H; ++e) ws_tma_copy<D>(base + s_off + e * kBN * 128, kKN * 128, run, grid, x[e], full + s);
          tma::arrive(full + s);
        };
        fill(k_empty, k_full, k_base, maps.k_run, maps.k_grid);
        fill(v_empty, v_full, v_base, maps.v_run, maps.v_grid);
        s_off += kStageBytes;
        if (++s == S) s = 0, s_off = 0, ++use;
      }
      return;
    }
    const int p = tid;
    const T* qg = static_cast<const T*>(a.q) + b * a.q_stride[0] + h * a.q_stride[2];
    const T* kg = static_cast<const T*>(a.k) + b * a.k_stride[0] + h * a.k_stride[2];
    const T* vg = static_cast<const T*>(a.v) + b * a.v_stride[0] + h * a.v_stride[2];
    // Row strides in bytes: the host checked that they fit in 32 bits.
    const uint32_t q_ld = uint32_t(a.q_stride[1] * int64_t(sizeof(T))), k_ld = uint32_t(a.k_stride[1] * int64_t(sizeof(T))),
                   v_ld = uint32_t(a.v_stride[1] * int64_t(sizeof(T)));
    const WsRowCopier<D> rows = WsRowCopier<D>::make(k_stage(0), p);
    // The second tile of a step: kBN rows further down in the same swizzle-atom columns.
    constexpr uint32_t kHalfBytes = kBN * 128;
    const int col = (p % (D / 8)) * 8;
    if (H > 1 && smem_address(raw_pointer_cast(&k_stage(0)(rows.row0 + kBN, col))) -
                         smem_address(raw_pointer_cast(&k_stage(0)(rows.row0, col))) != kHalfBytes)
      __trap();
    const uint32_t k_base = smem_address(ks), v_base = smem_address(vs);
    // Q's and step 0's look-ups in one round trip; after that, step j+1's go out right after step j's copies,
    // before the waits for its stages: once the ring is full the producer spends its time in those waits,
    // which then hide the look-ups' latency.
    int32_t tok[H][kWsPasses<D, kBN>];
    int valid[H];  // rows of slot e to copy (ws_slot_tokens)
    {
      int32_t q_tok[kWsPasses<D, kBM>];
      ws_tokens<D, kBM>(q_tok, q0, a.seq_len - 1, perm, p);
#pragma unroll
      for (int e = 0; e < H; ++e) valid[e] = ws_slot_tokens<D, kPacked>(tok[e], a, visit, e, perm, p);
      WsRowCopier<D>::make(sQ, p).template copy<kBM>(smem_address(qs), qg, q_ld, q_tok, a.seq_len - q0);
      mbar_arrive_on_copies(q_full);
    }
    uint32_t s_off = 0;  // step j's stage (byte offset) and use of it
    int s = 0, use = 0;
    for (int j = 0; j < num_steps; ++j) {
      if (use > 0) mbar_wait(k_empty + s, (use - 1) & 1);
#pragma unroll
      for (int e = 0; e < H; ++e) rows.template copy<kBN>(k_base + s_off + e * kHalfBytes, kg, k_ld, tok[e], valid[e]);
      mbar_arrive_on_copies(k_full + s);
      if (use > 0) mbar_wait(v_empty + s, (use - 1) & 1);
#pragma unroll
      for (int e = 0; e < H; ++e) rows.template copy<kBN>(v_base + s_off + e * kHalfBytes, vg, v_ld, tok[e], valid[e]);
      mbar_arrive_on_copies(v_full + s);
      if (j + 1 < num_steps) {
#pragma unroll
        for (int e = 0; e < H; ++e) valid[e] = ws_slot_tokens<D, kPacked>(tok[e], a, visit, H * (j + 1) + e, perm, p);
      }
      s_off += kStageBytes;
      if (++s == S) s = 0, s_off = 0, ++use;
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");  // leave no copy of this thread in flight
    return;
  }

  // ---- Consumers: warpgroup cw owns query rows 64cw..64cw+63 of the tile.
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegs));
  const int ctid = tid - kProducerThreads, cw = ctid / 128, wtid = ctid % 128;
  typename Tiles::MmaS mma_s;
  typename Tiles::MmaO mma_o;
  auto thr_s = mma_s.get_thread_slice(ctid);
  auto thr_o = mma_o.get_thread_slice(ctid);
  Tensor tSrQ = thr_s.partition_fragment_A(sQ);  // descriptors of this warpgroup's 64 rows, per k-block
  Tensor s_acc = partition_fragment_C(mma_s, Shape<Int<kBM>, Int<kKN>>{});
  Tensor o_acc = partition_fragment_C(mma_o, Shape<Int<kBM>, Int<D>>{});
  Tensor p_frag = make_tensor<E>(typename Tiles::PLayout{});
  static_assert(decltype(size(s_acc))::value == kKN / 2 && decltype(size(p_frag))::value == kKN / 2,
                "one S value per P value");
  static_assert(decltype(size(o_acc))::value == D / 2, "D / 8 column groups of 4 values");
  clear(o_acc);
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  const int row_base = cw * 64 + ((ctid / 32) % 4) * 16 + lane / 4, t = lane % 4;
  const int ragged = ragged_position(a, visit);

  // Stages and phase parities of steps i (k_), i-1 (v_) and i-2 (old_st), stepped once per step: j % S
  // and (j / S) & 1 would cost a division's worth of instructions per step.
  int k_st = 0, k_par = 0, v_st = 0, v_par = 0, old_st = 0;
  // Ping-pong turns (see the header): wait for ours before issuing, hand the turn over after.
  auto take_turn = [&]() {
    if (pingpong) bar_sync(kBarTurn + cw, 256);
  };
  auto give_turn = [&](bool last) { bar_arrive_if(kBarTurn + (1 - cw), 256, pingpong && !(last && cw == 1)); };
  auto issue_s = [&](int st) {  // S = Q · K(i)ᵀ
    sm90::issue_gemm(mma_s, tSrQ, thr_s.partition_fragment_B(k_stage(st)), s_acc, true);
  };
  auto issue_pv = [&](int st) {  // O += P(i-1) · V(i-1)
    sm90::issue_gemm(mma_o, p_frag, thr_o.partition_fragment_B(vt_stage(st)), o_acc, false);
  };
  auto softmax = [&](const uint64_t (&rows)[2 * H], bool masked, float (&alpha)[2]) {
    sm90::softmax_tile(s_acc, rows, masked, m, l, alpha, a.scale_log2, t);
  };
  auto rescale_and_pack = [&](const float (&alpha)[2]) { sm90::rescale_and_pack<T, D>(o_acc, p_frag, s_acc, alpha); };
  // The copies wrote through the generic proxy, wgmma reads through the async one: the fence comes after the
  // waits that acquired the copies and before the MMAs.
  auto acquired = [&]() {
    if constexpr (!kTma) sm90::fence_generic_to_async_smem();  // TMA writes through the async proxy
  };

  // The schedule of block_sparse_sm90.cu (num_steps + 1 issue points; see its header for why the waits sit
  // where they do), with the barrier replaced by the stage waits and the releases. Step i's masks are read
  // during issue point i-1 (next_rows).
  if (cw == 1) bar_arrive_if(kBarTurn, 256, pingpong);  // consumer 0 takes the first turn
  float alpha[2];
  uint64_t next_rows[2 * H];
  bool next_masked = false;
  {  // i = 0: S(0) alone
    uint64_t rows[2 * H];
    const bool masked = step_masks<H, kPacked>(rows, a, visit, 0, ragged, row_base);
    mbar_wait(q_full, 0);
    mbar_wait(k_full + 0, 0);
    acquired();
    take_turn();
    issue_s(0);
    give_turn(false);
    if (num_steps > 1) next_masked = step_masks<H, kPacked>(next_rows, a, visit, 1, ragged, row_base);
    warpgroup_wait<0>();
    mbar_arrive_warp(k_empty + 0, lane);
    softmax(rows, masked, alpha);
  }
  for (int i = 1; i < num_steps; ++i) {
    old_st = v_st, v_st = k_st, v_par = k_par;
    if (++k_st == S) k_st = 0, k_par ^= 1;
    warpgroup_wait<0>();  // P(i-2)·V(i-2) retired: O and P's registers and V(i-2)'s stage are free
    if (i >= 2) mbar_arrive_warp(v_empty + old_st, lane);
    rescale_and_pack(alpha);  // step i-1's
    uint64_t rows[2 * H];  // step i's
#pragma unroll
    for (int w = 0; w < 2 * H; ++w) rows[w] = next_rows[w];
    const bool masked = next_masked;
    mbar_wait(k_full + k_st, k_par);
    mbar_wait(v_full + v_st, v_par);
    acquired();
    take_turn();
    issue_s(k_st);
    issue_pv(v_st);
    give_turn(false);
    if (i + 1 < num_steps) next_masked = step_masks<H, kPacked>(next_rows, a, visit, i + 1, ragged, row_base);
    warpgroup_wait<1>();  // S(i) retired; P(i-1)·V(i-1) runs on during the softmax
    mbar_arrive_warp(k_empty + k_st, lane);
    softmax(rows, masked, alpha);
  }
  {  // i = num_steps: the last step's P·V
    // Step num_steps - 1 is the last loop's k_ step, num_steps - 2 its v_ step.
    const int last_st = k_st, last_par = k_par;
    warpgroup_wait<0>();
    if (num_steps >= 2) mbar_arrive_warp(v_empty + v_st, lane);
    rescale_and_pack(alpha);
    mbar_wait(v_full + last_st, last_par);
    acquired();
    take_turn();
    issue_pv(last_st);
    give_turn(true);
    warpgroup_wait<0>();
    warpgroup_fence_operand(o_acc);
    mbar_arrive_warp(v_empty + last_st, lane);
  }
  // This warpgroup's S MMAs (the only readers of its Q rows) are complete: stage the output there.
  store_rows_wg<T, D>(o_acc, l, sQ, out, out_ld, perm, q0, a.seq_len, row_base, t, cw, wtid);
#else
  (void)pingpong;
  __trap();  // not built for this device: block_sparse_sm90_device_refusal refuses it before any launch
#endif
}

template <typename T, int D, bool kPacked, bool kTma>
void launch_variant(const rt::Context& ctx, const BlockSparseArgs& a, dim3 grid, bool pingpong, const WsMaps& maps) {
  constexpr int smem_bytes = WsSmem<T, D>::bytes();
  static_assert(smem_bytes <= 227 * 1024, "Hopper's shared memory per block");
  DITRUN_CUDA_CHECK(cudaFuncSetAttribute(block_sparse_sm90ws_kernel<T, D, kPacked, kTma>,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes));
  block_sparse_sm90ws_kernel<T, D, kPacked, kTma>
      <<<grid, kWsThreads, smem_bytes, ctx.cuda().stream>>>(a, pingpong, maps);
}

// The maps of one operand (base, strides in elements: batch, token, head) for ws_tma_copy, or false when its
// strides are not the 16-byte multiples a TMA map needs (then the kernel gathers).
bool operand_maps(tma::EncodeTiled encode, const void* base, const int64_t (&stride)[3], const BlockSparseArgs& a,
                  int d, unsigned batch, int run_rows, const int (&box)[3], CUtensorMap* run, CUtensorMap* grid,
                  const char* what) {
  constexpr uint64_t elem = 2;
  const uint64_t bs = uint64_t(stride[0]) * elem, ts = uint64_t(stride[1]) * elem, hs = uint64_t(stride[2]) * elem;
  if (ts % 16 != 0 || hs % 16 != 0 || (batch > 1 && bs % 16 != 0) || reinterpret_cast<uintptr_t>(base) % 16 != 0)
    return false;
  const uint64_t batch_stride = batch > 1 ? bs : 16;  // unused with one entry, but a valid stride
  *run = tma::make_map_5d_b16(encode, base, {uint64_t(d), uint64_t(a.seq_len), uint64_t(a.heads), batch, 1},
                              {ts, hs, batch_stride, batch_stride}, {64, uint32_t(run_rows), 1, 1, 1}, what);
  if (box[0] == 0) return true;  // no tile is a grid box
  const void* grid_base = static_cast<const char*>(base) + uint64_t(a.grid_begin) * ts;
  const uint64_t w = uint64_t(a.grid_w), hh = uint64_t(a.grid_h), t = uint64_t(a.grid_t);
  if (t == 1)
    *grid = tma::make_map_5d_b16(encode, grid_base, {uint64_t(d), w, hh, uint64_t(a.heads), batch},
                                 {ts, w * ts, hs, batch_stride}, {64, uint32_t(box[2]), uint32_t(box[1]), 1, 1}, what);
  else
    *grid = tma::make_map_5d_b16(encode, grid_base, {uint64_t(d), w, hh, t, uint64_t(a.heads)},
                                 {ts, w * ts, hh * w * ts, hs},
                                 {64, uint32_t(box[2]), uint32_t(box[1]), uint32_t(box[0]), 1}, what);
  return true;
}

// Whether every tile goes by TMA (tile_boxes.h), with the maps in *maps: the layout's tiles are runs and grid
// boxes, the layout has no partial tile (packed_entry set: entries may walk packed keys, which are gathered
// by index), a video's grid boxes come with batch 1 (a 5-D map has no dimension left for the batch) and the
// operands' strides suit a map.
bool tma_maps(const BlockSparseArgs& a, int d, unsigned batch, WsMaps* maps) {
  if (!a.tma_boxes || a.packed_entry != nullptr) return false;
  if ((a.q_box[0] != 0 || a.kv_box[0] != 0) && a.grid_t > 1 && batch > 1) return false;
  const tma::EncodeTiled encode = tma::encode_tiled();
  return operand_maps(encode, a.q, a.q_stride, a, d, batch, kBM, a.q_box, &maps->q_run, &maps->q_grid, "q") &&
         operand_maps(encode, a.k, a.k_stride, a, d, batch, kBN, a.kv_box, &maps->k_run, &maps->k_grid, "k") &&
         operand_maps(encode, a.v, a.v_stride, a, d, batch, kBN, a.kv_box, &maps->v_run, &maps->v_grid, "v");
}

// Layouts whose tiles are runs and grid boxes (the top-k planner's included) run the TMA instance; the others
// gather, and those without packed entries (GRAT with border boxes, PARO's orders) run the kernel compiled
// without that path: on the H200 its extra instructions cost GRAT-B at Flux 2048² 2.5% (session 13, same-call A/B).
template <typename T, int D>
void launch(const rt::Context& ctx, const BlockSparseArgs& a, dim3 grid, bool pingpong) {
  WsMaps maps{};
  if (tma_maps(a, D, grid.z, &maps)) launch_variant<T, D, false, true>(ctx, a, grid, pingpong, maps);
  else if (a.packed_entry != nullptr) launch_variant<T, D, true, false>(ctx, a, grid, pingpong, maps);
  else launch_variant<T, D, false, false>(ctx, a, grid, pingpong, maps);
}

}  // namespace

void launch_block_sparse_sm90ws(const rt::Context& ctx, const BlockSparseArgs& a, bool bf16, int d, unsigned q_tiles,
                                unsigned heads, unsigned batch) {
  constexpr int64_t elem = 2;  // bf16 and f16
  for (const int64_t* stride : {a.q_stride, a.k_stride, a.v_stride})
    CHECK(stride[1] * elem <= INT32_MAX, "block_sparse_attention (sm90ws): a token stride of ", stride[1],
          " elements does not fit the kernel's 32-bit row offsets");
  const dim3 grid{q_tiles, heads, batch};
  constexpr bool pingpong = kPingPong;
  if (d == 64) bf16 ? launch<__nv_bfloat16, 64>(ctx, a, grid, pingpong) : launch<__half, 64>(ctx, a, grid, pingpong);
  else bf16 ? launch<__nv_bfloat16, 128>(ctx, a, grid, pingpong) : launch<__half, 128>(ctx, a, grid, pingpong);
  rt::cuda::check_launch(ctx, "block_sparse_attention (sm90ws)");
}

}  // namespace sattn::kernels::cuda
