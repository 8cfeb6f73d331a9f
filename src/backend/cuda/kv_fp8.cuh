// Device conversions of the FP8 KV cache (--kv-cache-dtype fp8,
// kv/kv_cache_dtype.h): the QKV kernel's write and the attention kernels'
// tile loads.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "kv/kv_cache_dtype.h"

namespace baton::cuda {

// e4m3(x / kKvFp8Scale), round to nearest even, saturated to +-448 (NaN:
// 0x7f), as the CPU backend's store_kv_row stores it.
__device__ __forceinline__ uint8_t float_to_kv_fp8(float x) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(x / kKvFp8Scale, __NV_SATFINITE, __NV_E4M3));
}

// Eight cached e4m3 values (8 bytes) as eight bf16 (16 bytes), times the
// scale; exact, every e4m3 value being a bf16 value.
__device__ __forceinline__ uint4 kv_fp8x8_to_bf16x8(uint2 packed) {
  uint4 out;
  const uint8_t* in = reinterpret_cast<const uint8_t*>(&packed);
  __nv_bfloat16* o = reinterpret_cast<__nv_bfloat16*>(&out);
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const __half_raw h = __nv_cvt_fp8_to_halfraw(static_cast<__nv_fp8_storage_t>(in[i]), __NV_E4M3);
    o[i] = __float2bfloat16(__half2float(__half(h)) * kKvFp8Scale);
  }
  return out;
}

}  // namespace baton::cuda
