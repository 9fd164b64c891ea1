// Device memory basics: allocation from the context's pool, launch checks, strided copies with dtype
// conversion (contiguous, cast, concat and transposes all reduce to it), host transfers and fill.
#include <cstdio>
#include <vector>
#include <string>

#include "base/out_of_memory.h"
#include "cuda/common.cuh"
#include "cuda/cuda_ops.h"
#include "cuda/device_state.h"
#include "random_hash.h"

namespace rt::cuda {

StridedIndexer make_indexer(const Tensor& t) {
  StridedIndexer ix;
  DITRUN_CHECK(t.dim() <= kMaxRank, "CUDA kernels take views of rank <= ", kMaxRank, ", got ", t.str());
  ix.rank = int(t.dim());
  for (int d = 0; d < ix.rank; ++d) {
    ix.size[d] = t.size(t.dim() - 1 - d);
    ix.stride[d] = t.strides()[size_t(t.dim() - 1 - d)];
  }
  return ix;
}

static std::string mib(size_t bytes) { return std::to_string((bytes + (1 << 19)) >> 20) + " MiB"; }

Tensor empty(const Context& ctx, const Shape& shape, DType dtype) {
  DeviceState& st = ctx.cuda();
  const size_t bytes = size_t(shape_numel(shape)) * dtype_size(dtype);
  void* p = st.allocate(bytes);
  if (p == nullptr) {
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    throw OutOfMemory("out of GPU memory: could not allocate " + mib(bytes) + " for a " + dtype_name(dtype) + shape_str(shape) +
                      " tensor on " + st.name + " (ditrun holds " + mib(st.bytes_in_use()) + ", peak " + mib(st.peak_bytes()) +
                      "; the device has " + mib(free_b) + " free of " + mib(total_b) +
                      "). Try a smaller --width/--height, --offload, --vae-tile, or close other GPU programs");
  }
  std::shared_ptr<DeviceState> keep = st.shared_from_this();
  std::shared_ptr<void> owner(p, [keep](void* q) { keep->free(q); });
  return Tensor::wrap(p, shape, dtype, std::move(owner), ctx.device());
}

void check_launch(const Context& ctx, const char* op) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) cuda_failed(op, "kernel launch", 0, cudaGetErrorString(e));
  if (ctx.debug_sync()) {
    const cudaError_t s = cudaStreamSynchronize(ctx.cuda().stream);
    if (s != cudaSuccess) cuda_failed(op, "debug-sync after op", 0, cudaGetErrorString(s));
  }
}

// Host round trips cannot be recorded into a CUDA graph (a replay would read a long-freed host buffer, or
// the host would read data that does not exist yet): during a capture they abandon it (cuda/graph.h),
// and the caller runs the work eagerly.
static void refuse_in_capture(const Context& ctx, const char* what) {
  if (ctx.cuda().capturing) throw CaptureError(std::string(what) + " during a CUDA graph capture");
}

void synchronize(const Context& ctx) {
  refuse_in_capture(ctx, "synchronize");
  DITRUN_CUDA_CHECK(cudaStreamSynchronize(ctx.cuda().stream));
}

MemoryStats memory_stats(const Context& ctx) {
  cuda::synchronize(ctx);  // frees are stream-ordered: count them once they happened
  return {ctx.cuda().bytes_in_use(), ctx.cuda().peak_bytes()};
}

void reset_peak_memory(const Context& ctx) {
  cuda::synchronize(ctx);
  ctx.cuda().reset_peak();
}

template <typename Dst, typename Src>
static __global__ void copy_kernel(Dst* dst, StridedIndexer di, const Src* src, StridedIndexer si, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[di(i)] = from_float<Dst>(to_float(src[si(i)]));
}

// dst contiguous: one indexer instead of two.
template <typename Dst, typename Src>
static __global__ void gather_kernel(Dst* dst, const Src* src, StridedIndexer si, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = from_float<Dst>(to_float(src[si(i)]));
}

// Batched transpose through a shared-memory tile, so both the reads and the writes are coalesced:
// dst[b, i, j] (row stride dst_ld, batch stride dst_bs) = src[b, j, i] (row stride src_ld, batch src_bs),
// i < rows, j < cols of dst. NCHW <-> NHWC conversions around cuDNN are this shape.
inline constexpr int kTile = 32;
template <typename Dst, typename Src>
static __global__ void transpose_kernel(Dst* dst, const Src* src, int64_t rows, int64_t cols, int64_t dst_ld,
                                        int64_t dst_bs, int64_t src_ld, int64_t src_bs) {
  __shared__ float tile[kTile][kTile + 1];  // +1: the column reads hit 32 different banks
  const int64_t b = blockIdx.z;
  const int64_t i0 = int64_t(blockIdx.x) * kTile, j0 = int64_t(blockIdx.y) * kTile;
  const Src* s = src + b * src_bs;
  Dst* d = dst + b * dst_bs;
  for (int k = threadIdx.y; k < kTile; k += blockDim.y) {  // read src rows j0+k, columns i0+tx
    const int64_t j = j0 + k, i = i0 + threadIdx.x;
    if (j < cols && i < rows) tile[k][threadIdx.x] = to_float(s[j * src_ld + i]);
  }
  __syncthreads();
  for (int k = threadIdx.y; k < kTile; k += blockDim.y) {  // write dst rows i0+k, columns j0+tx
    const int64_t i = i0 + k, j = j0 + threadIdx.x;
    if (i < rows && j < cols) d[i * dst_ld + j] = from_float<Dst>(tile[threadIdx.x][k]);
  }
}

// The view's dims with size-1 dims dropped and neighbours merged where the strides allow, outermost first.
struct Dims {
  std::vector<int64_t> size, dst_stride, src_stride;
};
static Dims collapse(const Tensor& dst, const Tensor& src) {
  Dims d;
  for (int64_t i = 0; i < dst.dim(); ++i) {
    if (dst.size(i) == 1) continue;
    const int64_t n = dst.size(i), ds = dst.strides()[size_t(i)], ss = src.strides()[size_t(i)];
    if (!d.size.empty() && d.dst_stride.back() == ds * n && d.src_stride.back() == ss * n) {
      d.size.back() *= n;
      d.dst_stride.back() = ds;
      d.src_stride.back() = ss;
    } else {
      d.size.push_back(n);
      d.dst_stride.push_back(ds);
      d.src_stride.push_back(ss);
    }
  }
  return d;
}

// Same dtype and, after collapsing, at most [outer, rows, cols] with contiguous rows on both sides (a
// concat into a slice, a strided q/k/v view): cudaMemcpy2DAsync per outer index, at copy bandwidth. The
// element-wise kernel spends its time on index division here (0.24 TB/s on Flux's [4608, 15360] concat).
static bool try_memcpy_2d(const Context& ctx, const Tensor& dst, const Tensor& src) {
  if (dst.dtype() != src.dtype()) return false;
  const Dims d = collapse(dst, src);
  const size_t r = d.size.size();
  if (r == 0 || r > 3 || d.dst_stride[r - 1] != 1 || d.src_stride[r - 1] != 1) return false;
  const int64_t cols = d.size[r - 1], rows = r >= 2 ? d.size[r - 2] : 1, outer = r == 3 ? d.size[0] : 1;
  if (outer > 16) return false;
  const size_t es = dtype_size(dst.dtype());
  const int64_t dld = r >= 2 ? d.dst_stride[r - 2] : cols, sld = r >= 2 ? d.src_stride[r - 2] : cols;
  for (int64_t o = 0; o < outer; ++o) {
    char* dp = static_cast<char*>(dst.raw_data()) + size_t(o * (r == 3 ? d.dst_stride[0] : 0)) * es;
    const char* sp = static_cast<const char*>(src.raw_data()) + size_t(o * (r == 3 ? d.src_stride[0] : 0)) * es;
    DITRUN_CUDA_CHECK(cudaMemcpy2DAsync(dp, size_t(dld) * es, sp, size_t(sld) * es, size_t(cols) * es, size_t(rows),
                                        cudaMemcpyDeviceToDevice, ctx.cuda().stream));
  }
  return true;
}

// Runs the copy as a batched transpose when, after collapsing, dst is contiguous [B, R, C] and src reads
// it column-major ([B, C, R] contiguous). Returns false when the views have another shape.
static bool try_transpose(const Context& ctx, const Tensor& dst, const Tensor& src) {
  const Dims d = collapse(dst, src);
  const size_t r = d.size.size();
  if (r < 2 || r > 3) return false;
  const int64_t rows = d.size[r - 2], cols = d.size[r - 1], batch = r == 3 ? d.size[0] : 1;
  const bool dst_ok = d.dst_stride[r - 1] == 1 && d.dst_stride[r - 2] == cols && (r == 2 || d.dst_stride[0] == rows * cols);
  const bool src_ok = d.src_stride[r - 2] == 1 && d.src_stride[r - 1] == rows && (r == 2 || d.src_stride[0] == rows * cols);
  // Row tiles on grid.x (up to 2^31 - 1: an NHWC image of 2048x2048 has 4M rows), column tiles on grid.y.
  const int64_t row_tiles = (rows + kTile - 1) / kTile, col_tiles = (cols + kTile - 1) / kTile;
  if (!dst_ok || !src_ok || batch > 65535 || col_tiles > 65535 || row_tiles > INT32_MAX) return false;
  const dim3 grid{unsigned(row_tiles), unsigned(col_tiles), unsigned(batch)};
  const dim3 block(kTile, 8);
  DITRUN_DISPATCH_FLOAT(dst.dtype(), D, [&] {
    DITRUN_DISPATCH_FLOAT(src.dtype(), S, [&] {
      transpose_kernel<D, S><<<grid, block, 0, ctx.cuda().stream>>>(static_cast<D*>(dst.raw_data()),
                                                                    static_cast<const S*>(src.raw_data()), rows, cols,
                                                                    cols, rows * cols, rows, rows * cols);
    });
  });
  check_launch(ctx, "copy (transpose)");
  return true;
}

// Same dtype, both contiguous: plain vectorized copy through the copy engine.
void copy(const Context& ctx, const Tensor& dst, const Tensor& src) {
  DITRUN_CHECK(dst.shape() == src.shape(), "copy: dst ", dst.str(), " and src ", src.str(), " differ in shape");
  const int64_t n = dst.numel();
  if (n == 0) return;
  cudaStream_t stream = ctx.cuda().stream;
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    DITRUN_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), dst.nbytes(), cudaMemcpyDeviceToDevice, stream));
    return;
  }
  if (dst.dtype() == DType::I64 || src.dtype() == DType::I64) {
    DITRUN_CHECK(false, "copy: i64 tensors copy only contiguous and without conversion, got ", dst.str(), " <- ", src.str());
  }
  if (try_memcpy_2d(ctx, dst, src) || try_transpose(ctx, dst, src)) return;
  const StridedIndexer di = make_indexer(dst), si = make_indexer(src);
  const int threads = 256;
  const unsigned blocks = unsigned(std::min<int64_t>(blocks_for(n, threads), int64_t(ctx.cuda().sm_count) * 32));
  const bool dst_contiguous = dst.is_contiguous();
  DITRUN_DISPATCH_FLOAT(dst.dtype(), D, [&] {
    DITRUN_DISPATCH_FLOAT(src.dtype(), S, [&] {
      if (dst_contiguous)
        gather_kernel<D, S><<<blocks, threads, 0, stream>>>(static_cast<D*>(dst.raw_data()),
                                                             static_cast<const S*>(src.raw_data()), si, n);
      else
        copy_kernel<D, S><<<blocks, threads, 0, stream>>>(static_cast<D*>(dst.raw_data()), di,
                                                           static_cast<const S*>(src.raw_data()), si, n);
    });
  });
  check_launch(ctx, "copy");
}

void upload(const Context& ctx, const Tensor& dst, const Tensor& src) {
  DITRUN_CHECK(dst.is_contiguous() && src.is_contiguous() && dst.nbytes() == src.nbytes() && dst.dtype() == src.dtype(),
               "upload: ", dst.str(), " <- ", src.str());
  if (dst.nbytes() == 0) return;
  refuse_in_capture(ctx, "a host-to-device upload");
  // From pageable memory the call returns once the source is staged, so the caller may free it.
  DITRUN_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), src.nbytes(), cudaMemcpyHostToDevice, ctx.cuda().stream));
}

void download(const Context& ctx, const Tensor& dst, const Tensor& src) {
  DITRUN_CHECK(dst.is_contiguous() && src.is_contiguous() && dst.nbytes() == src.nbytes() && dst.dtype() == src.dtype(),
               "download: ", dst.str(), " <- ", src.str());
  if (dst.nbytes() == 0) return;
  refuse_in_capture(ctx, "a device-to-host download");
  DITRUN_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), src.nbytes(), cudaMemcpyDeviceToHost, ctx.cuda().stream));
  DITRUN_CUDA_CHECK(cudaStreamSynchronize(ctx.cuda().stream));
}

template <typename T>
static __global__ void fill_kernel(T* dst, StridedIndexer di, float value, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[di(i)] = from_float<T>(value);
}

void fill(const Context& ctx, const Tensor& dst, float value) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  const StridedIndexer di = make_indexer(dst);
  const int threads = 256;
  const unsigned blocks = unsigned(std::min<int64_t>(blocks_for(n, threads), int64_t(ctx.cuda().sm_count) * 32));
  DITRUN_DISPATCH_FLOAT(dst.dtype(), T, [&] {
    fill_kernel<T><<<blocks, threads, 0, ctx.cuda().stream>>>(static_cast<T*>(dst.raw_data()), di, value, n);
  });
  check_launch(ctx, "fill");
}

template <typename T>
static __global__ void fill_uniform_kernel(T* dst, uint64_t seed, float lo, float hi, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = from_float<T>(lo + (hi - lo) * uniform_from_hash(seed, uint64_t(i)));
}

void fill_uniform(const Context& ctx, const Tensor& dst, uint64_t seed, float lo, float hi) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  const int threads = 256;
  const unsigned blocks = unsigned(std::min<int64_t>(blocks_for(n, threads), int64_t(ctx.cuda().sm_count) * 32));
  DITRUN_DISPATCH_FLOAT(dst.dtype(), T, [&] {
    fill_uniform_kernel<T><<<blocks, threads, 0, ctx.cuda().stream>>>(static_cast<T*>(dst.raw_data()), seed, lo, hi, n);
  });
  check_launch(ctx, "fill_uniform");
}

}  // namespace rt::cuda
