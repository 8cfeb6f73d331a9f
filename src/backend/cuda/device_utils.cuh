// Device helpers shared by the backend's kernels.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "common/check.h"

namespace baton::cuda {

#define BATON_LAUNCH_CHECK()                                                            \
  do {                                                                                  \
    cudaError_t _e = cudaGetLastError();                                                \
    BATON_CHECK(_e == cudaSuccess, "kernel launch failed: {}", cudaGetErrorString(_e)); \
  } while (0)

// The current device's SM count: the grid size of one block an SM.
inline int device_sm_count() {
  int device = 0, sms = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  BATON_CHECK(e == cudaSuccess, "the device's SM count: {}", cudaGetErrorString(e));
  return sms;
}

// Raises a kernel's dynamic shared-memory limit on the current device. Skipped
// while `stream` is being captured into a graph (the backend runs every step
// shape eagerly once before capturing it, so the attribute is set by then).
inline void set_dynamic_smem(const void* kernel, size_t bytes, cudaStream_t stream) {
  cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
  cudaError_t e = cudaStreamIsCapturing(stream, &st);
  BATON_CHECK(e == cudaSuccess, "cudaStreamIsCapturing: {}", cudaGetErrorString(e));
  if (st != cudaStreamCaptureStatusNone) return;
  e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  BATON_CHECK(e == cudaSuccess, "cudaFuncSetAttribute: {}", cudaGetErrorString(e));
}

// Programmatic dependent launch. A kernel launched by launch_pdl may be
// scheduled while the kernel before it in the stream (or graph) is still
// running; it must call pdl_wait() before its first access to global memory,
// which waits for that kernel's completion and writes. pdl_wait() then lets
// the next kernel be scheduled in turn. Inside a decode step's graph this
// hides each small kernel's launch behind the one before it (H200, one
// call: Qwen3-30B-A3B batch 1 3.63 -> 3.43 ms, Llama-3.1-8B 4.49 -> 4.44).
// Kernels launched the ordinary way pass pdl_wait() at once.
// pdl_wait<false>() waits without letting the next kernel be scheduled: it
// is then scheduled once every block has called pdl_trigger() or exited.
__device__ __forceinline__ void pdl_trigger() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }
template <bool kTrigger = true>
__device__ __forceinline__ void pdl_wait() {
  asm volatile("griddepcontrol.wait;" ::: "memory");
  if constexpr (kTrigger) pdl_trigger();
}

template <typename... KernelArgs, typename... Args>
void launch_pdl(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                Args&&... args) {
  cudaLaunchAttribute attr;
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = &attr;
  config.numAttrs = 1;
  const cudaError_t e = cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
  BATON_CHECK(e == cudaSuccess, "kernel launch failed: {}", cudaGetErrorString(e));
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
// The warp's largest (bv, bi) (ties: lowest id), in every lane.
__device__ __forceinline__ void warp_argmax(float& bv, int& bi) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ov > bv || (ov == bv && oi < bi)) {
      bv = ov;
      bi = oi;
    }
  }
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Block-wide reduction through one warp reduction per warp; `scratch` holds
// >= 32 floats; `identity` fills the lanes past the last warp. All threads get
// the result.
template <typename WarpReduce>
__device__ __forceinline__ float block_reduce(float v, float* scratch, float identity, WarpReduce warp_reduce) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_reduce(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  int nw = (blockDim.x + 31) >> 5;
  float r = lane < nw ? scratch[lane] : identity;
  return warp_reduce(r);
}
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  return block_reduce(v, scratch, 0.0f, [](float x) { return warp_sum(x); });
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
  return block_reduce(v, scratch, -INFINITY, [](float x) { return warp_max(x); });
}

// Philox4x32-10 (Salmon et al. 2011): counter-based, so any (key, counter)
// draw is reproducible on host and device alike.
struct Philox4 {
  uint32_t v[4];
};
__host__ __device__ inline Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                                 uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// Uniform values in [-1, 1) for elements i4 .. i4 + 3 of the random stream
// `seed` (Philox with counter i4): the random fills' common source.
__device__ __forceinline__ void uniform_pm1_x4(int64_t i4, uint64_t seed, float (&v)[4]) {
  const Philox4 r = philox4x32_10(static_cast<uint32_t>(i4), static_cast<uint32_t>(i4 >> 32), 0, 0,
                                  static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
#pragma unroll
  for (int j = 0; j < 4; ++j) v[j] = 2.0f * ((r.v[j] >> 8) * (1.0f / 16777216.0f)) - 1.0f;
}

__device__ __forceinline__ float bf(const __nv_bfloat16 x) { return __bfloat162float(x); }

}  // namespace baton::cuda
