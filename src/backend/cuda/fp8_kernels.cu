// The FP8 kernels of fp8_kernels.h.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <climits>

#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/fp8_kernels.h"
#include "backend/cuda/fp8_quantize.cuh"
#include "backend/cuda/gemv.cuh"

namespace baton::cuda {
namespace {

// Two e4m3 values (low byte first) as floats.
__device__ __forceinline__ float2 e4m3x2_to_float2(uint16_t two) {
  __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(two), __NV_E4M3);
  return __half22float2(*reinterpret_cast<__half2*>(&h));
}

// Half a warp per (row, group): 8 columns (16 bytes) per lane.
__global__ void quantize_groups_kernel(const bf16* x, int m, int k, int groups, uint8_t* q, float* scales) {
  const int64_t half_warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 4;
  const int lane = threadIdx.x & 15;
  const bool active = half_warp < static_cast<int64_t>(m) * groups;  // both halves reach the shuffles
  const int row = active ? static_cast<int>(half_warp / groups) : 0,
            g = active ? static_cast<int>(half_warp % groups) : 0;
  const int c0 = g * kFp8GroupCols + lane * 8;
  const bf16* xr = x + static_cast<int64_t>(row) * k;
  float v[8];
  const bool vec = (k & 7) == 0;  // 16-byte rows of 8 columns
  if (active && vec && c0 + 8 <= k) {
    const uint4 raw = *reinterpret_cast<const uint4*>(xr + c0);
    const __nv_bfloat162* p = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float2 f = __bfloat1622float2(p[j]);
      v[2 * j] = f.x;
      v[2 * j + 1] = f.y;
    }
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j) v[j] = active && c0 + j < k ? __bfloat162float(xr[c0 + j]) : 0.0f;
  }
  const float s = fp8_group_scale<16>(v, 0xffffffffu);
  if (!active) return;
  uint8_t* qr = q + static_cast<int64_t>(row) * k;
  if (vec && c0 + 8 <= k) {
    store_e4m3(qr + c0, v, s);
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j)
      if (c0 + j < k) qr[c0 + j] = to_e4m3(v[j] / s);
  }
  if (lane == 0) scales[static_cast<int64_t>(g) * m + row] = s;
}

__global__ void dequantize_kernel(Fp8DequantArgs a) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.rows * a.cols) return;
  const int64_t r = i / a.cols + a.row0, c = i % a.cols + a.col0;
  const float s = a.scales[(r / a.block_rows) * a.scale_ld + c / a.block_cols];
  const uint16_t one = a.bits[i];
  a.out[i] = __float2bfloat16(e4m3x2_to_float2(one).x * s);
}

__global__ void fp8_fill_random_kernel(uint8_t* bits, int64_t n, uint64_t seed) {
  const int64_t i4 = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * 4;
  if (i4 >= n) return;
  float v[4];
  uniform_pm1_x4(i4, seed, v);
#pragma unroll
  for (int j = 0; j < 4; ++j)
    if (i4 + j < n) bits[i4 + j] = to_e4m3(v[j] * kE4m3Max);
}

__global__ void fill_f32_kernel(float* x, int64_t n, float value) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = value;
}

}  // namespace

void launch_fp8_quantize_groups(const bf16* x, int m, int k, uint8_t* q, float* scales, cudaStream_t stream) {
  if (m == 0) return;
  const int groups = (k + kFp8GroupCols - 1) / kFp8GroupCols;
  const int64_t threads = static_cast<int64_t>(m) * groups * 16;
  quantize_groups_kernel<<<static_cast<unsigned>((threads + 255) / 256), 256, 0, stream>>>(x, m, k, groups, q, scales);
  BATON_LAUNCH_CHECK();
}

bool fp8_gemv_supports(int m, int k) { return m >= 1 && m <= 8 && k % 16 == 0; }

void launch_fp8_gemv(const bf16* x, const Fp8Weight& w, bf16* y, int m, int n, int k, cudaStream_t stream) {
  BATON_CHECK(fp8_gemv_supports(m, k), "fp8 gemv: m {} k {}", m, k);
  skinny::launch<true, bf16, false>(x, skinny::Weight{w.bits, w.scales, w.scale_rows, w.scale_ld}, y, m, n, k, stream);
  BATON_LAUNCH_CHECK();
}

void launch_fp8_gemv_silu_mul(const bf16* x, const Fp8Weight& w, bf16* out, int m, int inter, int k,
                              cudaStream_t stream) {
  BATON_CHECK(fp8_gemv_supports(m, k), "fp8 gemv: m {} k {}", m, k);
  skinny::launch<true, bf16, true>(x, skinny::Weight{w.bits, w.scales, w.scale_rows, w.scale_ld}, out, m, inter, k,
                                   stream);
  BATON_LAUNCH_CHECK();
}

void launch_fp8_gemv_norm_in(const GemvNormIn& in, const Fp8Weight& w, bf16* y, int m, int n, int k, bool gated,
                             cudaStream_t stream) {
  BATON_CHECK(gemv_norm_in_supports(m, k, true), "fp8 gemv norm-in: m {} k {}", m, k);
  const skinny::NormIn ni{in.residual, in.weight, in.eps};
  const skinny::Weight wt{w.bits, w.scales, w.scale_rows, w.scale_ld};
  if (gated) skinny::launch_norm_in<true, true>(ni, wt, y, m, n, k, stream);
  else skinny::launch_norm_in<true, false>(ni, wt, y, m, n, k, stream);
  BATON_LAUNCH_CHECK();
}

void launch_fp8_gemv_residual_add(const bf16* x, const Fp8Weight& w, const bf16* bias, float* residual, int m, int n,
                                  int k, cudaStream_t stream) {
  BATON_CHECK(gemv_residual_add_supports(m, k, true), "fp8 gemv residual-add: m {} k {}", m, k);
  skinny::launch_residual_add<true>(x, skinny::Weight{w.bits, w.scales, w.scale_rows, w.scale_ld}, bias, residual, m, n,
                                    k, stream);
  BATON_LAUNCH_CHECK();
}

void launch_fp8_dequantize(const Fp8DequantArgs& a, cudaStream_t stream) {
  const int64_t n = a.rows * a.cols;
  if (n == 0) return;
  dequantize_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(a);
  BATON_LAUNCH_CHECK();
}

void launch_fp8_fill_random(uint8_t* bits, int64_t n, uint64_t seed, cudaStream_t stream) {
  if (n == 0) return;
  const int64_t threads = (n + 3) / 4;
  fp8_fill_random_kernel<<<static_cast<unsigned>((threads + 255) / 256), 256, 0, stream>>>(bits, n, seed);
  BATON_LAUNCH_CHECK();
}

void launch_fill_const_f32(float* x, int64_t n, float value, cudaStream_t stream) {
  if (n == 0) return;
  fill_f32_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(x, n, value);
  BATON_LAUNCH_CHECK();
}

}  // namespace baton::cuda
