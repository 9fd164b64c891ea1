// Quantized block-sparse flash attention: block_sparse.cu's structure (one CTA of four warps per (batch,
// head, query tile of 128), each warp 32 rows; key tiles of 64 from the layout's CSR lists, full tiles first;
// K and V double-buffered with cp.async; masks of partial tiles from upload_layout) on 8-bit operands that
// the pre-pass (quant_prepass.cuh) wrote in layout order, so the loads are plain contiguous tiles:
//   S = Q·Kᵀ with mma.sync m16n8k32 s8·s8 -> s32 (exact), times q_scale(warp)·k_scale(tile)·scale·log2(e);
//   mask, online softmax in f32 with exp2 (as block_sparse.cu);
//   P (in [0, 1]) to u8 (255·P) or e4m3 (448·P) straight from the S registers into A fragments; V comes
//   transposed with its keys permuted inside every 16 (v_key) to match them; per key tile P·V runs into
//   fresh s32 / f32 registers (mma.sync m16n8k32 u8·s8 or e4m3·e4m3) which are then added to the f32
//   output accumulator (Sage's two-level accumulation);
//   epilogue: o · v_scale(channel) / (P scale · row sum), scattered back to natural order through perm.
// All fragments come through ldmatrix (b16 rows of 16 bytes = 16 int8 values): the 8-bit A/B layouts of
// m16n8k32 are the b16 layouts of m16n8k16 in 32-bit words (quant_mma.cuh).
// Dispatch (select_block_sparse_quant_kernel): where the device can run wgmma (block_sparse_sm90_device_refusal)
// and the call did not ask for SparseKernel::Sm80 (AttentionParams::sparse_kernel, kept in
// QuantizedOperands::kernel), block_sparse_attention_quantized runs the wgmma version of this kernel
// (block_sparse_quant_sm90.cu, same arguments and numbers), or for e4m3 P·V the warp-specialized one
// (block_sparse_quant_sm90ws.cu, three key tiles per softmax step at D = 128, two at D = 64).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "cuda/common.cuh"
#include "cuda/cuda_ops.h"
#include "cuda/device_state.h"
#include "sparse_attention/kernels/sparse/block_sparse_quant.h"
#include "sparse_attention/kernels/sparse/cuda/block_sparse_quant_args.h"
#include "sparse_attention/kernels/sparse/cuda/block_sparse_quant_sm90.h"
#include "sparse_attention/kernels/sparse/cuda/entry_order.h"
#include "sparse_attention/kernels/sparse/cuda/flash_softmax.cuh"
#include "sparse_attention/kernels/sparse/cuda/quant_mma.cuh"
#include "sparse_attention/kernels/sparse/cuda/quant_prepass.cuh"
#include "sparse_attention/kernels/sparse/cuda/warp_mma.cuh"

namespace sattn::kernels::cuda {

namespace {

using flash::apply_mask;
using flash::softmax_update;
using flash::zero_fill;

constexpr int kBM = int(kBlockSparseQTile);   // query rows per CTA
constexpr int kBN = int(kBlockSparseKvTile);  // keys per tile
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kWarpRows = kBM / kWarps;
static_assert(kWarpRows == kQuantQBlock && kBN == kQuantKBlock && kBN == kPrepassRows,
              "one Q scale per warp, one K scale per key tile, one pre-pass block per key tile");
static_assert(kWarpRows == 32 && kBN == 64, "the fragment loops and the 64-bit mask assume 32 rows per warp, 64 keys");

// Starts the copy of ROWS rows of ROW_BYTES from `src` (rows `ld` bytes apart) into a swizzled shared tile.
// The pre-pass padded every buffer to whole query tiles, so every row exists.
template <int ROWS, int ROW_BYTES>
__device__ __forceinline__ void load_bytes(uint8_t* tile, const uint8_t* src, int64_t ld) {
  constexpr int kChunks = ROW_BYTES / 16;
  constexpr int kRowsPerPass = kThreads / kChunks;
  static_assert(ROWS % kRowsPerPass == 0, "whole passes");
  const int chunk = int(threadIdx.x) % kChunks;
#pragma unroll
  for (int i = 0; i < ROWS / kRowsPerPass; ++i) {
    const int row = i * kRowsPerPass + int(threadIdx.x) / kChunks;
    cp_async_16(tile + swizzle_bytes<ROW_BYTES>(row, chunk), src + row * ld + chunk * 16, true);
  }
}

// s = (Q[warp rows] · K[tile]ᵀ) · dequant: integer dot products, then one multiply.
template <int D>
__device__ __forceinline__ void tile_scores(float (&s)[2][kBN / 8][4], const uint8_t* qs, const uint8_t* ks, float dequant,
                                            int warp, int lane) {
  int acc[2][kBN / 8][4];
  zero_fill(acc);
#pragma unroll
  for (int kk = 0; kk < D / 32; ++kk) {
    uint32_t a[2][4];
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
      ldmatrix_x4(a[mi], qs + swizzle_bytes<D>(warp * kWarpRows + mi * 16 + lane % 16, 2 * kk + lane / 16));
#pragma unroll
    for (int nb = 0; nb < kBN / 16; ++nb) {
      uint32_t b[4];  // b[0], b[1]: keys 16nb..+7 (k halves); b[2], b[3]: keys 16nb+8..+15
      ldmatrix_x4(b, ks + swizzle_bytes<D>(nb * 16 + (lane / 16) * 8 + lane % 8, 2 * kk + (lane / 8) % 2));
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
        mma_s8s8(acc[mi][2 * nb], a[mi], b[0], b[1]);
        mma_s8s8(acc[mi][2 * nb + 1], a[mi], b[2], b[3]);
      }
    }
  }
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int n = 0; n < kBN / 8; ++n)
#pragma unroll
      for (int c = 0; c < 4; ++c) s[mi][n][c] = float(acc[mi][n][c]) * dequant;
}

// o += P · V[tile] (unscaled: P in units of 1/255 or 1/448, V in units of its channel scale). The A
// fragment of key chunk kc (32 keys) takes, in byte order, the thread's P columns 2t, 2t+1 of n8 blocks
// 4kc, 4kc+1 (registers 0/1: rows g / g+8) and 4kc+2, 4kc+3 (registers 2/3); the transposed V tile holds
// its keys in that order (v_key).
template <int D, bool FP8>
__device__ __forceinline__ void accumulate_pv(float o[2][D / 8][4], const float s[2][kBN / 8][4], const uint8_t* vs, int lane) {
  using Acc = std::conditional_t<FP8, float, int>;
  uint32_t p[2][2][4];  // [key chunk][row block][register]
#pragma unroll
  for (int kc = 0; kc < 2; ++kc)
#pragma unroll
    for (int mi = 0; mi < 2; ++mi) {
      const float(*x)[4] = s[mi] + 4 * kc;
      p[kc][mi][0] = pack_p4<FP8>(x[0][0], x[0][1], x[1][0], x[1][1]);
      p[kc][mi][1] = pack_p4<FP8>(x[0][2], x[0][3], x[1][2], x[1][3]);
      p[kc][mi][2] = pack_p4<FP8>(x[2][0], x[2][1], x[3][0], x[3][1]);
      p[kc][mi][3] = pack_p4<FP8>(x[2][2], x[2][3], x[3][2], x[3][3]);
    }
#pragma unroll
  for (int db = 0; db < D / 16; ++db) {
    Acc acc[2][2][4] = {};  // [row block][n8 block 2db + j][register]: this tile's sum, exact for s32
#pragma unroll
    for (int kc = 0; kc < 2; ++kc) {
      uint32_t b[4];  // b[0], b[1]: channels 16db..+7 (k halves); b[2], b[3]: channels 16db+8..+15
      ldmatrix_x4(b, vs + swizzle_bytes<kBN>(db * 16 + (lane / 16) * 8 + lane % 8, 2 * kc + (lane / 8) % 2));
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          if constexpr (FP8)
            mma_e4m3(acc[mi][j], p[kc][mi], b[2 * j], b[2 * j + 1]);
          else
            mma_u8s8(acc[mi][j], p[kc][mi], b[2 * j], b[2 * j + 1]);
        }
    }
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
      for (int j = 0; j < 2; ++j)
#pragma unroll
        for (int c = 0; c < 4; ++c) o[mi][2 * db + j][c] += float(acc[mi][j][c]);
  }
}

template <typename T, int D, bool FP8>
__global__ void __launch_bounds__(kThreads, 2) block_sparse_quant_kernel(const QuantArgs a) {
  extern __shared__ __align__(128) unsigned char smem[];
  uint8_t* qs = smem;               // [kBM, D]
  uint8_t* ks = qs + kBM * D;       // two stages of [kBN, D]
  uint8_t* vs = ks + 2 * kBN * D;   // two stages of [D, kBN]
  const auto [qt, h, b] = cta_entry(a);
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  const int q0 = qt * kBM;
  const int64_t bh = int64_t(b) * a.heads + h;
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

  const uint8_t* qg = reinterpret_cast<const uint8_t*>(a.q8) + (bh * a.padded_len + q0) * D;
  const uint8_t* kg = reinterpret_cast<const uint8_t*>(a.k8) + bh * a.padded_len * D;
  const uint8_t* vg = a.vt8 + bh * D * a.padded_len;
  const float* k_scale = a.k_scale + bh * (a.padded_len / kBN);
  const float q_dequant = a.q_scale[bh * (a.padded_len / kWarpRows) + qt * kWarps + warp] * a.scale_log2;

  // Commit groups in order: {Q, K0}, V0, K1, then per tile i: V[i+1] (after the first barrier) and K[i+2]
  // (after the second). Every wait below leaves the two most recent groups in flight.
  int tile = tile_at(0), next = tile_at(1), after = tile_at(2);
  load_bytes<kBM, D>(qs, qg, D);
  load_bytes<kBN, D>(ks, kg + int64_t(tile) * kBN * D, D);
  cp_async_commit();
  load_bytes<D, kBN>(vs, vg + int64_t(tile) * kBN, a.padded_len);
  cp_async_commit();
  if (next >= 0) load_bytes<kBN, D>(ks + kBN * D, kg + int64_t(next) * kBN * D, D);
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
    if (next >= 0) load_bytes<D, kBN>(vs + (stage ^ 1) * kBN * D, vg + int64_t(next) * kBN, a.padded_len);
    cp_async_commit();

    // The masks are read after the scores (unlike block_sparse.cu): eight registers fewer during the GEMM,
    // where the 8-bit kernel's register budget is tightest.
    float s[2][kBN / 8][4];
    tile_scores<D>(s, qs, ks + stage * kBN * D, q_dequant * __ldg(k_scale + tile), warp, lane);
    const bool partial = i >= num_full, ragged_tile = ragged && tile == last_kv_tile;
    if (partial || ragged_tile) {
      uint64_t rows[4];
      if (partial) {
        const uint64_t* mask = a.partial_masks + int64_t(partial_begin + i - num_full) * kBM + warp * kWarpRows + g;
#pragma unroll
        for (int r = 0; r < 4; ++r) rows[r] = __ldg(mask + (r / 2) * 16 + (r % 2) * 8);
      } else {
#pragma unroll
        for (int r = 0; r < 4; ++r) rows[r] = (uint64_t(1) << (a.seq_len - tile * kBN)) - 1;
      }
      apply_mask(s, rows, lane);
    }
    softmax_update<D>(s, o, m, l, 1.f);  // the scores are in log2 units already

    cp_async_wait<2>();
    __syncthreads();  // V[i] landed; every warp is done reading K[i]'s buffer
    if (after >= 0) load_bytes<kBN, D>(ks + stage * kBN * D, kg + int64_t(after) * kBN * D, D);
    cp_async_commit();
    const int later = tile_at(i + 3);
    accumulate_pv<D, FP8>(o, s, vs + stage * kBN * D, lane);
    tile = next, next = after, after = later;
  }
  cp_async_wait<0>();

  // o · v_scale / (P scale · row sum), two channels per 32-bit store, rows scattered through perm.
  const float* v_scale = a.v_scale + bh * D;
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float sum = l[mi][hh];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const float inv = sum > 0.f ? a.inv_p_scale / sum : 0.f;  // nothing attended: zeros
      const int pos = q0 + warp * kWarpRows + mi * 16 + hh * 8 + g;
      if (pos >= a.seq_len) continue;
      T* row = out + natural_token(perm, pos) * out_ld;
#pragma unroll
      for (int nd = 0; nd < D / 8; ++nd) {
        const int c = nd * 8 + 2 * t;
        *reinterpret_cast<uint32_t*>(row + c) =
            pack2<T>(o[mi][nd][2 * hh] * __ldg(v_scale + c) * inv, o[mi][nd][2 * hh + 1] * __ldg(v_scale + c + 1) * inv);
      }
    }
}

template <typename T, int D>
void launch_attention(const rt::Context& ctx, const QuantArgs& a, dim3 grid, bool fp8) {
  constexpr int smem_bytes = (kBM + 4 * kBN) * D;
  auto kernel = fp8 ? block_sparse_quant_kernel<T, D, true> : block_sparse_quant_kernel<T, D, false>;
  DITRUN_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes));
  kernel<<<grid, kThreads, smem_bytes, ctx.cuda().stream>>>(a);
}

template <typename T, int D>
void launch_prepass(const rt::Context& ctx, const PrepassArgs& a, int bh) {
  cudaStream_t stream = ctx.cuda().stream;
  column_partials_kernel<T, D><<<dim3(unsigned(a.chunks), unsigned(bh)), kPrepassThreads, 0, stream>>>(a);
  rt::cuda::check_launch(ctx, "block_sparse_attention_quant.column_partials");
  column_finalize_kernel<D><<<unsigned(bh), D, 0, stream>>>(a);
  rt::cuda::check_launch(ctx, "block_sparse_attention_quant.column_finalize");
  quantize_block_kernel<T, D><<<dim3(unsigned(a.padded_len / kPrepassRows), unsigned(bh)), kPrepassThreads, 0, stream>>>(a);
  rt::cuda::check_launch(ctx, "block_sparse_attention_quant.quantize");
}

// The pre-pass may read `t` 8 elements (16 bytes) at a time: channels contiguous, the other strides whole
// 16-byte steps, the base aligned.
bool vector_ok(const rt::Tensor& t) {
  const auto& s = t.strides();
  return rt::dtype_size(t.dtype()) == 2 && s[3] == 1 && s[0] % 8 == 0 && s[1] % 8 == 0 && s[2] % 8 == 0 &&
         reinterpret_cast<uintptr_t>(t.raw_data()) % 16 == 0;
}

// A pool buffer of `bytes` (a multiple of 4), typed f32 because rt::DType has no 8-bit integer type.
rt::Tensor bytes_buffer(const rt::Context& ctx, int64_t bytes) {
  return rt::cuda::empty(ctx, {std::max<int64_t>(bytes, 4) / 4}, rt::DType::F32);
}

}  // namespace

namespace {

// The uploaded lists belong to `layout` (the check of block_sparse.cu).
void check_upload(const BlockLayout& layout, const UploadedLayout& dl) {
  const size_t words = upload_words(layout);
  CHECK(dl.words == words && (dl.perm == nullptr) == layout.perm.empty() &&
            (dl.head_perm == nullptr) == layout.head_perm.empty(),
        "block_sparse_attention_quant: the uploaded layout (",
        dl.words, " words) was not made from this layout (", words, " words)");
}

// The kernel block_sparse_attention_quantized runs for `kernel` and `quant`; an explicit Sm90 / Sm90Ws the
// device cannot run fails with the reason.
SparseKernel quant_kernel(const rt::Context& ctx, SparseKernel kernel, AttnQuant quant) {
  std::string why;
  const std::optional<SparseKernel> chosen = select_block_sparse_quant_kernel(ctx, kernel, quant, &why);
  CHECK(chosen.has_value(), "block_sparse_attention_quantized: the ", sparse_kernel_name(kernel),
        " kernel was asked for: ", why);
  return *chosen;
}

}  // namespace

std::optional<SparseKernel> select_block_sparse_quant_kernel(const rt::Context& ctx, SparseKernel requested,
                                                             AttnQuant quant, std::string* why) {
  std::string local;
  std::string& reason = why != nullptr ? *why : local;
  reason.clear();
  if (requested == SparseKernel::Sm80) return SparseKernel::Sm80;
  reason = block_sparse_sm90_device_refusal(ctx);
  if (!reason.empty()) return requested == SparseKernel::Auto ? std::optional(SparseKernel::Sm80) : std::nullopt;
  if (quant_pv_fp8(quant) && requested != SparseKernel::Sm90) return SparseKernel::Sm90Ws;
  return SparseKernel::Sm90;
}

QuantizedOperands quantize_operands(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& layout,
                                    AttnQuant quant, const UploadedLayout& dl) {
  const std::string refusal = block_sparse_quant_refusal(p, layout, quant);
  CHECK(refusal.empty(), "block_sparse_attention_quant: q ", p.q.str(), " k ", p.k.str(), " v ", p.v.str(), ": ", refusal);
  const rt::cuda::DeviceState& dev = ctx.cuda();
  CHECK(!quant_pv_fp8(quant) || dev.cc_major * 10 + dev.cc_minor >= 89, "block_sparse_attention_quant: ",
        attn_quant_name(quant), " needs the FP8 MMA of sm_89 or newer; this GPU is ", dev.name);
  check_upload(layout, dl);
  QuantizedOperands o;
  o.quant = quant, o.dtype = p.q.dtype(), o.kernel = p.sparse_kernel;
  quant_kernel(ctx, o.kernel, quant);  // an explicit Sm90 the device cannot run fails here, before the pre-pass
  o.batch = p.q.size(0), o.len = p.q.size(1), o.heads = p.q.size(2), o.dim = p.q.size(3);
  o.scale = p.scale != 0.f ? p.scale : 1.f / std::sqrt(float(o.dim));
  CHECK(o.scale > 0.f && std::isfinite(o.scale), "block_sparse_attention_quant: softmax scale ", o.scale, " must be positive");
  o.padded_len = layout.num_q_tiles() * kBM;
  const int64_t bh = o.batch * o.heads, padded = o.padded_len, d = o.dim;
  if (bh * o.len * d == 0) return o;

  PrepassArgs pa{};
  pa.q = p.q.raw_data(), pa.k = p.k.raw_data(), pa.v = p.v.raw_data();
  for (int i = 0; i < 4; ++i) pa.q_stride[i] = p.q.strides()[i], pa.k_stride[i] = p.k.strides()[i], pa.v_stride[i] = p.v.strides()[i];
  pa.perm = dl.perm, pa.head_perm = dl.head_perm, pa.layout_heads = int(layout.heads);
  pa.seq_len = int(o.len), pa.padded_len = int(padded), pa.heads = int(o.heads);
  pa.chunks = int(std::min<int64_t>(128, (o.len + 255) / 256));
  pa.chunk_tokens = int((o.len + pa.chunks - 1) / pa.chunks);
  pa.qk_max = quant_qk_max(quant), pa.v_max = quant_v_max(quant), pa.v_fp8 = quant_pv_fp8(quant);
  pa.q_vec = vector_ok(p.q), pa.k_vec = vector_ok(p.k), pa.v_vec = vector_ok(p.v);
  // stats: the column partials (scratch), then k_mean and v_scale; scales: q_scale, then k_scale and k_norm.
  o.stats = rt::cuda::empty(ctx, {bh * (2 * pa.chunks + 2) * d}, rt::DType::F32);
  pa.partial_sum = static_cast<float*>(o.stats.raw_data());
  pa.partial_max = pa.partial_sum + bh * pa.chunks * d;
  pa.k_mean = pa.partial_max + bh * pa.chunks * d;
  pa.v_scale = pa.k_mean + bh * d;
  o.q8 = bytes_buffer(ctx, bh * padded * d), o.k8 = bytes_buffer(ctx, bh * padded * d), o.vt8 = bytes_buffer(ctx, bh * padded * d);
  o.scales = rt::cuda::empty(ctx, {bh * (padded / kWarpRows + 2 * (padded / kBN))}, rt::DType::F32);
  pa.q8 = static_cast<int8_t*>(o.q8.raw_data()), pa.k8 = static_cast<int8_t*>(o.k8.raw_data());
  pa.vt8 = static_cast<uint8_t*>(o.vt8.raw_data());
  pa.q_scale = static_cast<float*>(o.scales.raw_data());
  pa.k_scale = pa.q_scale + bh * (padded / kWarpRows);
  pa.k_norm = pa.k_scale + bh * (padded / kBN);
  const bool bf16 = o.dtype == rt::DType::BF16;
  if (d == 64) bf16 ? launch_prepass<__nv_bfloat16, 64>(ctx, pa, int(bh)) : launch_prepass<__half, 64>(ctx, pa, int(bh));
  else bf16 ? launch_prepass<__nv_bfloat16, 128>(ctx, pa, int(bh)) : launch_prepass<__half, 128>(ctx, pa, int(bh));
  o.v_scale_offset = int64_t(pa.v_scale - pa.partial_sum);
  return o;
}

rt::Tensor block_sparse_attention_quantized(const rt::Context& ctx, const QuantizedOperands& o, const BlockLayout& layout,
                                            const UploadedLayout& dl) {
  CHECK(layout.num_q_tiles() * kBM == o.padded_len && layout.seq_len == o.len,
        "block_sparse_attention_quantized: operands quantized for ", o.len, " tokens, layout of ", layout.seq_len);
  check_upload(layout, dl);
  rt::Tensor out = rt::cuda::empty(ctx, {o.batch, o.len, o.heads, o.dim}, o.dtype);
  if (out.numel() == 0) return out;
  const int64_t bh = o.batch * o.heads;
  QuantArgs a{};
  a.q8 = static_cast<const int8_t*>(o.q8.raw_data()), a.k8 = static_cast<const int8_t*>(o.k8.raw_data());
  a.vt8 = static_cast<const uint8_t*>(o.vt8.raw_data());
  a.q_scale = static_cast<const float*>(o.scales.raw_data());
  a.k_scale = a.q_scale + bh * (o.padded_len / kWarpRows);
  a.k_norm = a.k_scale + bh * (o.padded_len / kBN);
  a.v_scale = static_cast<const float*>(o.stats.raw_data()) + o.v_scale_offset;
  a.out = out.raw_data();
  a.seq_len = int(o.len), a.padded_len = int(o.padded_len), a.heads = int(o.heads), a.num_q_tiles = int(layout.num_q_tiles());
  a.layout_batch = int(layout.batch), a.layout_heads = int(layout.heads);
  a.perm = dl.perm, a.head_perm = dl.head_perm, a.full_offsets = dl.full_offsets, a.full_index = dl.full_index;
  a.partial_offsets = dl.partial_offsets, a.partial_index = dl.partial_index, a.partial_masks = dl.partial_masks;
  a.scale_log2 = o.scale * 1.44269504088896341f;  // log2(e)
  a.inv_p_scale = 1.f / quant_p_scale(o.quant);
  const dim3 grid{unsigned(a.num_q_tiles), unsigned(o.heads), unsigned(o.batch)};
  // Heavy entries first (entry_order.h), as for the bf16 kernels; `order` stays alive until the kernel is
  // queued behind it.
  const rt::Tensor order = order_entries(ctx, a, int64_t(grid.x) * grid.y * grid.z, int((o.len + kBN - 1) / kBN));
  a.entry_order = static_cast<const int32_t*>(order.raw_data());
  const bool bf16 = o.dtype == rt::DType::BF16, fp8 = quant_pv_fp8(o.quant);
  switch (quant_kernel(ctx, o.kernel, o.quant)) {
    case SparseKernel::Sm90Ws: launch_block_sparse_quant_sm90ws(ctx, a, bf16, int(o.dim), grid.x, grid.y, grid.z); return out;
    case SparseKernel::Sm90: launch_block_sparse_quant_sm90(ctx, a, bf16, int(o.dim), fp8, grid.x, grid.y, grid.z); return out;
    default: break;
  }
  if (o.dim == 64) bf16 ? launch_attention<__nv_bfloat16, 64>(ctx, a, grid, fp8) : launch_attention<__half, 64>(ctx, a, grid, fp8);
  else bf16 ? launch_attention<__nv_bfloat16, 128>(ctx, a, grid, fp8) : launch_attention<__half, 128>(ctx, a, grid, fp8);
  rt::cuda::check_launch(ctx, "block_sparse_attention_quant");
  return out;
}

rt::Tensor block_sparse_attention_quant(const rt::Context& ctx, const AttentionParams& p, const BlockLayout& layout,
                                        AttnQuant quant, const UploadedLayout* uploaded) {
  UploadedLayout fresh;
  if (uploaded == nullptr) {
    const std::string refusal = block_sparse_quant_refusal(p, layout, quant);
    CHECK(refusal.empty(), "block_sparse_attention_quant: q ", p.q.str(), " k ", p.k.str(), " v ", p.v.str(), ": ", refusal);
    fresh = upload_layout(ctx, layout);
  }
  const UploadedLayout& dl = uploaded != nullptr ? *uploaded : fresh;
  return block_sparse_attention_quantized(ctx, quantize_operands(ctx, p, layout, quant, dl), layout, dl);
}

}  // namespace sattn::kernels::cuda
