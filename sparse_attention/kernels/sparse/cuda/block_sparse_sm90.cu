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
#include "sparse_attention/kernels/sparse/cuda/sm90_steps.cuh"

#ifndef DITRUN_SM90A_BUILT
#define DITRUN_SM90A_BUILT 0
#endif

namespace sattn::kernels::cuda {

namespace {

using namespace cute;
using sm90::kBM;
using sm90::kBN;
using sm90::kThreads;
using sm90::load_rows;

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
  const int num_tiles = tiles.num_tiles;
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
    uint64_t rows[2];
    const bool masked = sm90::key_masks(rows, a, tiles, i, tile, row_base);

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
    if (masked) sm90::apply_key_masks(s_acc, rows, t);
    float alpha[2];
    sm90::softmax_rows(s_acc, m, l, alpha, a.scale_log2);
    sm90::rescale_o<D>(o_acc, alpha);
    sm90::pack_p<T>(s_acc, p_frag);

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

  // Normalize and store, staged in this warpgroup's own rows of the Q tile (its last S MMA is complete).
  sm90::store_rows<T, D>(o_acc, l, sQ, out, out_ld, perm, q0, a.seq_len, row_base, t);
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
