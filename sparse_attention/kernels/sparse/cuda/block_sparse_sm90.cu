// Block-sparse flash attention on Hopper's warpgroup MMA (wgmma, sm_90a only). Same contract, arguments
// and numerics as block_sparse.cu (the mma.sync kernel): one CTA per (batch, head, query tile of 128 rows),
// key tiles of 64 from the layout's CSR lists (full first, then partial), rows gathered through the perm in
// the loads and scattered back in the stores, the partial tiles' 64-bit row masks, the ragged last key
// tile, f32 online softmax with exp2, P rounded to the input dtype before P·V, zeros for rows that attend
// nothing.
//
// Structure: two consumer warpgroups (256 threads), each owning 64 query rows, and no producer warp.
// Every thread issues cp.async row copies (a TMA tile copy cannot gather rows through the perm), with K
// and V double-buffered exactly as block_sparse.cu does. Per key tile each warpgroup runs
//   S = Q·Kᵀ   wgmma m64n64k16, A = Q and B = K from swizzled shared memory, f32 accumulators,
//   mask and online softmax on the accumulator registers,
//   O += P·V   wgmma m64nDk16, A = P from registers (the S accumulators rounded to 16 bits: their layout
//              is the A-fragment layout), B = V from shared memory read transposed (MN-major).
// The two warpgroups (and a second CTA on the SM when registers allow) hide each other's softmax behind
// their MMAs; an explicit ping-pong or a producer warpgroup with deeper K/V stages is the next step.
//
// Only the sm_90a pass compiles the body (__CUDA_ARCH_FEAT_SM90_ALL); the sm_80 PTX pass of the same file
// gets a trap, and the host refuses devices the body was not built for.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <sstream>

#include "cuda/common.cuh"
#include "cuda/cuda_ops.h"
#include "cuda/device_state.h"
#include "sparse_attention/kernels/sparse/cuda/block_sparse_sm90.h"
#include "sparse_attention/kernels/sparse/cuda/flash_softmax.cuh"
#include "sparse_attention/kernels/sparse/cuda/layout_order.cuh"
#include "sparse_attention/kernels/sparse/cuda/sm90_tile.cuh"
#include "sparse_attention/kernels/sparse/cuda/warp_mma.cuh"

#ifndef DITRUN_SM90A_BUILT
#define DITRUN_SM90A_BUILT 0
#endif

namespace sattn::kernels::cuda {

namespace {

using namespace cute;
using sm90::kBM;
using sm90::kBN;
using sm90::kThreads;

// Starts the copy of ROWS layout positions from pos0 on (one batch and head; tokens `ld` elements apart)
// into the swizzled tile `tile` (a CuTe shared-memory tensor [ROWS, D]). Positions past the sequence end
// become zeros: a ragged tile's keys are masked, but 0 · NaN in P·V would still poison the row.
template <int D, int ROWS, class Tile, typename T>
__device__ __forceinline__ void load_rows(Tile& tile, const T* base, int64_t ld, int pos0, const int32_t* perm,
                                          int seq_len) {
  constexpr int kChunks = D / 8;  // 16-byte chunks per row: the swizzle keeps each chunk contiguous
  constexpr int kRowsPerPass = kThreads / kChunks;
  static_assert(ROWS % kRowsPerPass == 0, "whole passes");
  const int chunk = int(threadIdx.x) % kChunks;
#pragma unroll
  for (int i = 0; i < ROWS / kRowsPerPass; ++i) {
    const int row = i * kRowsPerPass + int(threadIdx.x) / kChunks;
    const int pos = pos0 + row;
    const bool valid = pos < seq_len;
    const int64_t token = valid ? natural_token(perm, pos) : 0;
    cp_async_16(raw_pointer_cast(&tile(row, chunk * 8)), base + token * ld + chunk * 8, valid);
  }
}

// Online softmax over one key tile on a thread's S accumulators (32 values: two rows r, 16 keys each, see
// sm90_tile.cuh): the same steps and the same -inf conventions as flash::softmax_update.
template <int D, class S, class O>
__device__ __forceinline__ void softmax_tile(S& s, O& o, float (&m)[2], float (&l)[2], float scale_log2) {
  constexpr int kSCols = kBN / 8, kOCols = D / 8;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float mx = -INFINITY;
#pragma unroll
    for (int n = 0; n < kSCols; ++n) mx = fmaxf(mx, fmaxf(s(4 * n + 2 * r), s(4 * n + 2 * r + 1)));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));  // the four threads of a row: lanes 4g..4g+3
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_new = fmaxf(m[r], mx);
    // Nothing attended so far: m stays -inf, and reference 0 makes every p and alpha 0.
    const float ref = m_new == -INFINITY ? 0.f : m_new * scale_log2;
    const float alpha = flash::fast_exp2(m[r] * scale_log2 - ref);
    m[r] = m_new;
    float sum = 0.f;
#pragma unroll
    for (int n = 0; n < kSCols; ++n)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const float p = flash::fast_exp2(fmaf(s(4 * n + 2 * r + c), scale_log2, -ref));
        s(4 * n + 2 * r + c) = p;
        sum += p;
      }
    l[r] = l[r] * alpha + sum;
#pragma unroll
    for (int n = 0; n < kOCols; ++n) {
      o(4 * n + 2 * r) *= alpha;
      o(4 * n + 2 * r + 1) *= alpha;
    }
  }
}

template <typename T, int D>
__global__ void __launch_bounds__(kThreads, 1) block_sparse_sm90_kernel(const BlockSparseArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Tiles = sm90::Tiles<T, D>;
  using E = typename Tiles::E;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t misalign = smem_address(smem_raw) & 1023u;
  E* qs = reinterpret_cast<E*>(smem_raw + (misalign == 0 ? 0 : 1024 - misalign));
  E* ks = qs + Tiles::kQElems;       // two stages of [kBN, D]
  E* vs = ks + 2 * Tiles::kKVElems;  // two stages of [kBN, D]
  Tensor sQ = make_tensor(make_smem_ptr(qs), typename Tiles::Q{});
  auto k_stage = [&](int s) { return make_tensor(make_smem_ptr(ks + s * Tiles::kKVElems), typename Tiles::KV{}); };
  auto v_stage = [&](int s) { return make_tensor(make_smem_ptr(vs + s * Tiles::kKVElems), typename Tiles::KV{}); };
  auto vt_stage = [&](int s) { return make_tensor(make_smem_ptr(vs + s * Tiles::kKVElems), typename Tiles::Vt{}); };

  const int qt = int(blockIdx.x), h = int(blockIdx.y), b = int(blockIdx.z);
  const int tid = int(threadIdx.x), lane = tid % 32;
  const int q0 = qt * kBM;
  T* out = static_cast<T*>(a.out) + (int64_t(b) * a.seq_len * a.heads + h) * D;
  const int64_t out_ld = int64_t(a.heads) * D;
  const int32_t* perm = head_order(a.perm, a.head_perm, a.layout_heads, a.seq_len, h);

  const EntryTiles tiles = entry_tiles(a, b, h, qt);
  const int num_full = tiles.num_full, num_tiles = tiles.num_tiles, partial_begin = tiles.partial_begin;
  if (num_tiles == 0) {
    zero_rows<D, kThreads>(out, out_ld, perm, q0, kBM, a.seq_len);
    return;
  }

  const T* qg = static_cast<const T*>(a.q) + b * a.q_stride[0] + h * a.q_stride[2];
  const T* kg = static_cast<const T*>(a.k) + b * a.k_stride[0] + h * a.k_stride[2];
  const T* vg = static_cast<const T*>(a.v) + b * a.v_stride[0] + h * a.v_stride[2];

  // Commit groups as in block_sparse.cu: {Q, K0}, V0, K1, then per tile i: V[i+1] (after the first barrier)
  // and K[i+2] (after the second). Every wait leaves the two most recent groups in flight.
  int tile = tiles.at(0), next = tiles.at(1), after = tiles.at(2);
  {
    auto k0 = k_stage(0), v0 = v_stage(0);
    load_rows<D, kBM>(sQ, reinterpret_cast<const E*>(qg), a.q_stride[1], q0, perm, a.seq_len);
    load_rows<D, kBN>(k0, reinterpret_cast<const E*>(kg), a.k_stride[1], tile * kBN, perm, a.seq_len);
    cp_async_commit();
    load_rows<D, kBN>(v0, reinterpret_cast<const E*>(vg), a.v_stride[1], tile * kBN, perm, a.seq_len);
    cp_async_commit();
    if (next >= 0) {
      auto k1 = k_stage(1);
      load_rows<D, kBN>(k1, reinterpret_cast<const E*>(kg), a.k_stride[1], next * kBN, perm, a.seq_len);
    }
    cp_async_commit();
  }

  typename Tiles::MmaS mma_s;
  typename Tiles::MmaO mma_o;
  auto thr_s = mma_s.get_thread_slice(tid);
  auto thr_o = mma_o.get_thread_slice(tid);
  Tensor tSrQ = thr_s.partition_fragment_A(sQ);  // descriptors of this warpgroup's 64 rows, per k-block
  Tensor s_acc = partition_fragment_C(mma_s, Shape<Int<kBM>, Int<kBN>>{});
  Tensor o_acc = partition_fragment_C(mma_o, Shape<Int<kBM>, Int<D>>{});
  Tensor p_frag = make_tensor<E>(typename Tiles::PLayout{});
  static_assert(decltype(size(s_acc))::value == 32 && decltype(size(p_frag))::value == 32, "one S value per P value");
  static_assert(decltype(size(o_acc))::value == D / 2, "D / 8 column groups of 4 values");
  clear(o_acc);
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
  // This thread's two query rows inside the tile (sm90_tile.cuh's map): rows 8r + row_base.
  const int row_base = (tid / 128) * 64 + ((tid / 32) % 4) * 16 + lane / 4, t = lane % 4;
  const int last_kv_tile = (a.seq_len - 1) / kBN;
  const bool ragged = a.seq_len % kBN != 0;

  for (int i = 0; i < num_tiles; ++i) {
    const int stage = i & 1;
    cp_async_wait<2>();
    sm90::fence_generic_to_async_smem();
    __syncthreads();  // K[i] (and Q) landed for every thread; every warpgroup is done with V[i-1]'s buffer
    if (next >= 0) {
      auto vn = v_stage(stage ^ 1);
      load_rows<D, kBN>(vn, reinterpret_cast<const E*>(vg), a.v_stride[1], next * kBN, perm, a.seq_len);
    }
    cp_async_commit();

    // Partial tiles: the two rows' masks, read before the MMA so that it hides the load. The ragged last
    // tile: keys past the end.
    const bool partial = i >= num_full, ragged_tile = ragged && tile == last_kv_tile;
    uint64_t rows[2] = {~uint64_t(0), ~uint64_t(0)};
    if (partial) {
      const uint64_t* mask = a.partial_masks + int64_t(partial_begin + i - num_full) * kBM + row_base;
      rows[0] = __ldg(mask), rows[1] = __ldg(mask + 8);
    } else if (ragged_tile) {
      rows[0] = rows[1] = (uint64_t(1) << (a.seq_len - tile * kBN)) - 1;
    }

    {  // S = Q · K[i]ᵀ
      auto sk = k_stage(stage);
      Tensor tSrK = thr_s.partition_fragment_B(sk);
      warpgroup_fence_operand(s_acc);
      warpgroup_arrive();
      mma_s.accumulate_ = GMMA::ScaleOut::Zero;
#pragma unroll
      for (int kb = 0; kb < size<2>(tSrQ); ++kb) {
        gemm(mma_s, tSrQ(_, _, kb), tSrK(_, _, kb), s_acc);
        mma_s.accumulate_ = GMMA::ScaleOut::One;
      }
      warpgroup_commit_batch();
      warpgroup_wait<0>();
      warpgroup_fence_operand(s_acc);
    }
    if (partial || ragged_tile) {
#pragma unroll
      for (int v = 0; v < 32; ++v) {
        const int r = (v / 2) % 2, key = 8 * (v / 4) + 2 * t + v % 2;
        if (!((rows[r] >> key) & 1)) s_acc(v) = -INFINITY;
      }
    }
    softmax_tile<D>(s_acc, o_acc, m, l, a.scale_log2);
    // P in the input dtype, pairs packed as block_sparse.cu packs them (round to nearest even).
    {
      uint32_t* p2 = reinterpret_cast<uint32_t*>(raw_pointer_cast(p_frag.data()));
#pragma unroll
      for (int j = 0; j < 16; ++j) p2[j] = pack2<T>(s_acc(2 * j), s_acc(2 * j + 1));
    }

    cp_async_wait<2>();
    sm90::fence_generic_to_async_smem();
    __syncthreads();  // V[i] landed; every warpgroup is done reading K[i]'s buffer
    if (after >= 0) {
      auto kn = k_stage(stage);
      load_rows<D, kBN>(kn, reinterpret_cast<const E*>(kg), a.k_stride[1], after * kBN, perm, a.seq_len);
    }
    cp_async_commit();
    const int later = tiles.at(i + 3);  // read now, used next iteration: the P·V below hides the latency

    {  // O += P · V[i]
      auto svt = vt_stage(stage);
      Tensor tOrV = thr_o.partition_fragment_B(svt);
      warpgroup_fence_operand(o_acc);
      warpgroup_fence_operand(p_frag);
      warpgroup_arrive();
      mma_o.accumulate_ = GMMA::ScaleOut::One;
#pragma unroll
      for (int kb = 0; kb < kBN / 16; ++kb) gemm(mma_o, p_frag(_, _, kb), tOrV(_, _, kb), o_acc);
      warpgroup_commit_batch();
      warpgroup_wait<0>();
      warpgroup_fence_operand(o_acc);
    }
    tile = next, next = after, after = later;
  }
  cp_async_wait<0>();

  // Normalize, stage the rows in this warpgroup's own rows of the Q tile (its last S MMA is complete, and
  // no other warpgroup reads them), then store 16-byte chunks to the rows' natural positions.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float sum = l[r];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const float inv = sum > 0.f ? 1.f / sum : 0.f;  // nothing attended: zeros
    const int row = row_base + 8 * r;
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
      *reinterpret_cast<uint32_t*>(raw_pointer_cast(&sQ(row, 8 * n + 2 * t))) =
          pack2<T>(o_acc(4 * n + 2 * r) * inv, o_acc(4 * n + 2 * r + 1) * inv);
  }
  __syncthreads();
  constexpr int kChunks = D / 8;
#pragma unroll 4
  for (int idx = tid; idx < kBM * kChunks; idx += kThreads) {
    const int row = idx / kChunks, chunk = idx % kChunks;
    const int pos = q0 + row;
    if (pos < a.seq_len)
      *reinterpret_cast<uint4*>(out + natural_token(perm, pos) * out_ld + chunk * 8) =
          *reinterpret_cast<const uint4*>(raw_pointer_cast(&sQ(row, chunk * 8)));
  }
#else
  __trap();  // not built for this device: block_sparse_sm90_device_refusal refuses it before any launch
#endif
}

template <typename T, int D>
void launch(const rt::Context& ctx, const BlockSparseArgs& a, dim3 grid) {
  constexpr int smem_bytes = sm90::Tiles<T, D>::kSmemBytes;
  DITRUN_CUDA_CHECK(
      cudaFuncSetAttribute(block_sparse_sm90_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes));
  block_sparse_sm90_kernel<T, D><<<grid, kThreads, smem_bytes, ctx.cuda().stream>>>(a);
}

}  // namespace

std::string block_sparse_sm90_device_refusal(const rt::Context& ctx) {
  if (!DITRUN_SM90A_BUILT)
    return "the wgmma block-sparse kernel needs sm_90a code, and this build's CMAKE_CUDA_ARCHITECTURES has no 90a "
           "(reconfigure with -DCMAKE_CUDA_ARCHITECTURES=\"90a 80-virtual\")";
  const rt::cuda::DeviceState& dev = ctx.cuda();
  if (dev.cc_major != 9 || dev.cc_minor != 0) {
    std::ostringstream why;
    why << "the wgmma block-sparse kernel runs on compute capability 9.0 (Hopper), got " << dev.cc_major << "."
        << dev.cc_minor << " on " << dev.name << " (use the sm80 kernel)";
    return why.str();
  }
  return "";
}

void launch_block_sparse_sm90(const rt::Context& ctx, const BlockSparseArgs& a, bool bf16, int d, unsigned q_tiles,
                              unsigned heads, unsigned batch) {
  const dim3 grid{q_tiles, heads, batch};
  if (d == 64) bf16 ? launch<__nv_bfloat16, 64>(ctx, a, grid) : launch<__half, 64>(ctx, a, grid);
  else bf16 ? launch<__nv_bfloat16, 128>(ctx, a, grid) : launch<__half, 128>(ctx, a, grid);
  rt::cuda::check_launch(ctx, "block_sparse_attention (sm90)");
}

}  // namespace sattn::kernels::cuda
