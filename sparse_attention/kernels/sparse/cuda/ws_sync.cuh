// The synchronization of the warp-specialized Hopper kernels (block_sparse_sm90ws.cu, block_sparse_quant_sm90ws.cu):
// shared-memory mbarriers between the producer warpgroup's copies (cp.async in the bf16 kernel, TMA in the
// quantized one: tma.cuh) and the consumers, and the named barriers of the consumers' ping-pong. See
// block_sparse_sm90ws.cu's header for the protocol.
#pragma once
#include <cstdint>

#include "sparse_attention/kernels/sparse/cuda/warp_mma.cuh"

namespace sattn::kernels::cuda::ws {

__device__ __forceinline__ void mbar_init(uint64_t* bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_address(bar)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t* bar, int parity) {
  asm volatile(
      "{\n.reg .pred done;\nWAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT;\n}\n" ::"r"(smem_address(bar)),
      "r"(parity)
      : "memory");
}
// Lane 0 arrives for its warp; predicated rather than branched, as wgmma may be in flight around it.
__device__ __forceinline__ void mbar_arrive_warp(uint64_t* bar, int lane) {
  asm volatile(
      "{\n.reg .pred p;\n.reg .b64 st;\nsetp.eq.s32 p, %1, 0;\n"
      "@p mbarrier.arrive.shared::cta.b64 st, [%0];\n}\n" ::"r"(smem_address(bar)),
      "r"(lane)
      : "memory");
}
// One arrival once all of this thread's earlier cp.async copies landed (the barrier's count includes it).
__device__ __forceinline__ void mbar_arrive_on_copies(uint64_t* bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(smem_address(bar)) : "memory");
}
__device__ __forceinline__ void bar_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void bar_arrive_if(int id, int threads, bool on) {
  asm volatile("{\n.reg .pred p;\nsetp.ne.s32 p, %2, 0;\n@p bar.arrive %0, %1;\n}\n" ::"r"(id), "r"(threads),
               "r"(int(on))
               : "memory");
}

}  // namespace sattn::kernels::cuda::ws
