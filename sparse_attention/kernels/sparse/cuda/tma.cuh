// Hopper's tensor memory accelerator (TMA) for the warp-specialized kernels: 2-D tiles of bytes from a row-major
// global array (the quantized kernel) or 5-D boxes of 16-bit elements (the bf16/f16 kernel) into a swizzled
// shared-memory tile, completing on an mbarrier's transaction count.
// One producer thread issues a whole tile, where cp.async needed 128 threads and 4 instructions each per tile
// (block_sparse_quant_sm90ws.cu's header says what that gained).
#pragma once
#include <cuda.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "base/check.h"
#include "cuda/common.h"
#include "sparse_attention/kernels/sparse/cuda/warp_mma.cuh"

namespace sattn::kernels::cuda::tma {

using EncodeTiled = decltype(&cuTensorMapEncodeTiled);  // a type only: nothing links against libcuda

// cuTensorMapEncodeTiled through the runtime's driver entry point: calling it directly would make libcuda.so.1
// a load-time dependency of every binary, and CI's machines have no driver.
inline EncodeTiled encode_tiled() {
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult found{};
  DITRUN_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found));
  DITRUN_CHECK(found == cudaDriverEntryPointSuccess && fn != nullptr,
               "the CUDA driver has no cuTensorMapEncodeTiled (query result ", int(found), "); update the driver");
  return reinterpret_cast<EncodeTiled>(fn);
}

// A tensor map over `rows` rows of `row_bytes` bytes (row pitch = row_bytes) at `base`, copied in boxes of
// box_rows × box_bytes into shared memory with the given swizzle: 128 bytes is CuTe's
// GMMA::Layout_K_SW128_Atom (Swizzle<3,4,3>), 64 bytes its Layout_K_SW64_Atom (Swizzle<2,4,3>) for 8-bit
// elements, rows stacked in the order the box lists them.
inline CUtensorMap make_map_2d(EncodeTiled encode, const void* base, uint64_t row_bytes,
                               uint64_t rows, uint32_t box_bytes, uint32_t box_rows, int swizzle_bytes,
                               const char* what) {
  DITRUN_CHECK(swizzle_bytes == 64 || swizzle_bytes == 128, "TMA swizzle of ", swizzle_bytes, " bytes for ", what,
               ": expected 64 or 128");
  CUtensorMap map;
  const cuuint64_t dims[2] = {row_bytes, rows};
  const cuuint64_t strides[1] = {row_bytes};
  const cuuint32_t box[2] = {box_bytes, box_rows};
  const cuuint32_t elem_strides[2] = {1, 1};
  const CUtensorMapSwizzle swizzle = swizzle_bytes == 128 ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_64B;
  const CUresult r = encode(&map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, const_cast<void*>(base), dims, strides, box,
                            elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  // The operands are whole device buffers (16-byte aligned, as the kernel's earlier cp.async copies needed
  // too) with rows of 64 or 128 bytes or of the padded length (a multiple of 128): a refusal is a bug here.
  DITRUN_CHECK(r == CUDA_SUCCESS, "the TMA descriptor of ", what, " was refused (CUresult ", int(r), ") for ", rows,
               " rows of ", row_bytes, " bytes in boxes of ", box_rows, " x ", box_bytes);
  return map;
}

// A tensor map over 16-bit elements in five dimensions (dims[0] contiguous; strides in bytes of dims 1 to 4),
// copied in boxes of box[0..4] elements with the 128-byte swizzle (box[0] = 64 elements: one swizzle atom's
// row), the box's rows stacked in the order of its dimensions. Elements outside the dims arrive as zeros.
// The block-sparse sm90ws kernel views q, k and v so (block_sparse_sm90ws.cu).
inline CUtensorMap make_map_5d_b16(EncodeTiled encode, const void* base, const uint64_t (&dims)[5],
                                   const uint64_t (&strides)[4], const uint32_t (&box)[5], const char* what) {
  CUtensorMap map;
  cuuint64_t d[5], st[4];
  cuuint32_t b[5];
  const cuuint32_t elem_strides[5] = {1, 1, 1, 1, 1};
  for (int i = 0; i < 5; ++i) d[i] = dims[i], b[i] = box[i];
  for (int i = 0; i < 4; ++i) st[i] = strides[i];
  const CUresult r = encode(&map, CU_TENSOR_MAP_DATA_TYPE_UINT16, 5, const_cast<void*>(base), d, st, b, elem_strides,
                            CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  // The caller checked what the map needs (16-byte aligned base and strides, extents below 2^32): a refusal
  // is a bug there.
  DITRUN_CHECK(r == CUDA_SUCCESS, "the TMA descriptor of ", what, " was refused (CUresult ", int(r), ") for dims ",
               dims[0], " x ", dims[1], " x ", dims[2], " x ", dims[3], " x ", dims[4], ", strides ", strides[0], ", ",
               strides[1], ", ", strides[2], ", ", strides[3], " bytes, box ", box[0], " x ", box[1], " x ", box[2],
               " x ", box[3], " x ", box[4]);
  return map;
}

// The box at (byte x, row y) of `map` into `dst`, counted on `bar` as its bytes land.
__device__ __forceinline__ void load_2d(void* dst, const CUtensorMap& map, int x, int y, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          smem_address(dst)),
      "l"(reinterpret_cast<uint64_t>(&map)), "r"(x), "r"(y), "r"(smem_address(bar))
      : "memory");
}

// The box at coordinates c0..c4 (elements) of a 5-D `map` into `dst`, counted on `bar` as its bytes land.
__device__ __forceinline__ void load_5d(uint32_t dst, const CUtensorMap& map, int c0, int c1, int c2, int c3, int c4,
                                        uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.5d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5, "
      "%6}], [%7];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(&map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(c4), "r"(smem_address(bar))
      : "memory");
}

// The phase of `bar` now also waits for `bytes` more bytes of TMA copies.
__device__ __forceinline__ void expect_bytes(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(smem_address(bar)), "r"(bytes)
               : "memory");
}

// One arrival, releasing this thread's earlier shared-memory stores to whoever waits on the phase.
__device__ __forceinline__ void arrive(uint64_t* bar) {
  asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.shared::cta.b64 st, [%0];\n}\n" ::"r"(smem_address(bar)) : "memory");
}

}  // namespace sattn::kernels::cuda::tma
