// Device helpers of the per-token-group FP8 quantisation (fp8_kernels.h's
// launch_fp8_quantize_groups and the kernels that quantise their own output
// ahead of a W8A8 GEMM): one group of 128 columns spread over consecutive
// lanes, each holding kN of its values.
#pragma once

#include <cuda_fp8.h>

#include <cstdint>

namespace baton::cuda {

constexpr float kE4m3Max = 448.0f;

__device__ __forceinline__ uint8_t to_e4m3(float v) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
}

// The group's scale: amax / 448 over the kLanes lanes of `mask` (1 when the
// group is all zeros). Every lane of the mask must call it.
template <int kLanes, int kN>
__device__ __forceinline__ float fp8_group_scale(const float (&v)[kN], unsigned mask) {
  float amax = 0.0f;
#pragma unroll
  for (int j = 0; j < kN; ++j) amax = fmaxf(amax, fabsf(v[j]));
#pragma unroll
  for (int off = kLanes / 2; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(mask, amax, off));
  return amax > 0.0f ? amax / kE4m3Max : 1.0f;
}

// dst[j] = e4m3(v[j] / s) for kN of 4 (one 4-byte store) or 8 (one 8-byte store).
template <int kN>
__device__ __forceinline__ void store_e4m3(uint8_t* dst, const float (&v)[kN], float s) {
  static_assert(kN == 4 || kN == 8, "4 or 8 values a lane");
  uint32_t w[kN / 4] = {};
#pragma unroll
  for (int j = 0; j < kN; ++j) w[j / 4] |= static_cast<uint32_t>(to_e4m3(v[j] / s)) << (8 * (j % 4));
  if constexpr (kN == 4) *reinterpret_cast<uint32_t*>(dst) = w[0];
  else *reinterpret_cast<uint2*>(dst) = make_uint2(w[0], w[1]);
}

}  // namespace baton::cuda
