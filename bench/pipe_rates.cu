// EXPERIMENT (session 23): issue rates on the H200 of MUFU.EX2, of F2FP to e4m3x2 (the FP8 kernel's P pack),
// and of both interleaved (do they share a pipe?). 132 x 4 blocks of 512 threads, 8 independent chains per
// thread; prints warp instructions per clock per SM. Build and run: nvcc -arch=sm_90a -O3 -o /tmp/pr
// bench/pipe_rates.cu && /tmp/pr
#include <cstdio>
#include <cuda_runtime.h>

template <int MODE>
__global__ void k(unsigned* out, float seed, int iters, long long* cycles) {
  float x[8];
  unsigned acc = 0;
  for (int i = 0; i < 8; ++i) x[i] = seed + 0.001f * (threadIdx.x + i);
  const long long t0 = clock64();
  for (int it = 0; it < iters; ++it) {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      if (MODE == 0 || MODE == 2) asm volatile("ex2.approx.ftz.f32 %0, %0;" : "+f"(x[i]));
      if (MODE == 1 || MODE == 2) {
        unsigned short h;
        asm volatile("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(h) : "f"(x[i]), "f"(x[(i + 1) % 8]));
        acc += h;
        if (MODE == 1) asm volatile("" : "+f"(x[i]));
      }
    }
  }
  const long long t1 = clock64();
  if (threadIdx.x % 32 == 0) atomicAdd(reinterpret_cast<unsigned long long*>(cycles), (unsigned long long)(t1 - t0));
  float s = 0;
  for (int i = 0; i < 8; ++i) s += x[i];
  if (s == 12345.f || acc == 7u) out[threadIdx.x] = acc;
}

int main() {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  unsigned* out;
  long long* cyc;
  cudaMalloc(&out, 4096);
  cudaMalloc(&cyc, 8);
  const int iters = 4096, blocks = sms * 4, threads = 512;
  const char* names[3] = {"MUFU.EX2 only", "F2FP e4m3x2 only", "both interleaved"};
  for (int rep = 0; rep < 2; ++rep)
    for (int mode = 0; mode < 3; ++mode) {
      cudaMemset(cyc, 0, 8);
      if (mode == 0) k<0><<<blocks, threads>>>(out, 0.5f, iters, cyc);
      if (mode == 1) k<1><<<blocks, threads>>>(out, 0.5f, iters, cyc);
      if (mode == 2) k<2><<<blocks, threads>>>(out, 0.5f, iters, cyc);
      cudaDeviceSynchronize();
      long long c = 0;
      cudaMemcpy(&c, cyc, 8, cudaMemcpyDeviceToHost);
      const double warps = double(blocks) * threads / 32, per_warp_cycles = double(c) / warps;
      // Warps resident per SM at once: 4 blocks x 16 warps = 64; instructions per warp: iters x 8 of each.
      const double resident = 64.0, instr = double(iters) * 8;
      printf("%-18s: %.2f warp instructions (of each kind) per clock per SM (%.0f cycles per warp)\n", names[mode],
             resident * instr / per_warp_cycles, per_warp_cycles);
    }
  printf("%s\n", cudaGetErrorString(cudaGetLastError()));
  return 0;
}
