// The FP8 kernels of fp8_kernels.h.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <climits>

#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/fp8_kernels.h"

namespace baton::cuda {
namespace {

constexpr float kE4m3Max = 448.0f;

__device__ __forceinline__ uint8_t to_e4m3(float v) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3));
}

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
  float amax = 0.0f;
#pragma unroll
  for (int j = 0; j < 8; ++j) amax = fmaxf(amax, fabsf(v[j]));
#pragma unroll
  for (int off = 8; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
  if (!active) return;
  const float s = amax > 0.0f ? amax / kE4m3Max : 1.0f;
  uint8_t* qr = q + static_cast<int64_t>(row) * k;
  if (vec && c0 + 8 <= k) {
    uint32_t lo = 0, hi = 0;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      lo |= static_cast<uint32_t>(to_e4m3(v[j] / s)) << (8 * j);
      hi |= static_cast<uint32_t>(to_e4m3(v[4 + j] / s)) << (8 * j);
    }
    *reinterpret_cast<uint2*>(qr + c0) = make_uint2(lo, hi);
  } else {
#pragma unroll
    for (int j = 0; j < 8; ++j)
      if (c0 + j < k) qr[c0 + j] = to_e4m3(v[j] / s);
  }
  if (lane == 0) scales[static_cast<int64_t>(g) * m + row] = s;
}

constexpr int kRows = 2;    // rows of w per warp
constexpr int kUnroll = 4;  // 16-byte chunks per lane per iteration
constexpr int kWarpsPerBlock = 8;

// Dot of 16 e4m3 weights with 16 bf16 activations.
__device__ __forceinline__ float dot16(const uint4& w, const uint4& x0, const uint4& x1) {
  const uint16_t* wp = reinterpret_cast<const uint16_t*>(&w);
  const __nv_bfloat162* xa = reinterpret_cast<const __nv_bfloat162*>(&x0);
  const __nv_bfloat162* xb = reinterpret_cast<const __nv_bfloat162*>(&x1);
  float acc = 0.0f;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const float2 a = e4m3x2_to_float2(wp[j]);
    const float2 b = __bfloat1622float2(j < 4 ? xa[j] : xb[j - 4]);
    acc = fmaf(a.x, b.x, acc);
    acc = fmaf(a.y, b.y, acc);
  }
  return acc;
}

// As gemv.cu's kernel, over e4m3 rows: each warp owns 2 rows of w, each lane
// walks k in 16-byte chunks (16 weights), scaling each chunk's dot by its group's scale.
template <int M>
__global__ void __launch_bounds__(32 * kWarpsPerBlock)
    fp8_gemv_kernel(const bf16* x, Fp8Weight w, bf16* y, int n, int k) {
  const int warp = blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  const int n0 = warp * kRows;
  if (n0 >= n) return;
  const int kc = k / 16;
  float acc[M][kRows];
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[m][r] = 0.0f;
  const uint4* wr[kRows];
  const float* sr[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int row = min(n0 + r, n - 1);
    wr[r] = reinterpret_cast<const uint4*>(w.bits + static_cast<int64_t>(row) * k);
    sr[r] = w.scales + static_cast<int64_t>(row / w.scale_rows) * w.scale_ld;
  }
  for (int c0 = 0; c0 < kc; c0 += 32 * kUnroll) {
    uint4 wv[kUnroll][kRows];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * 32 + lane;
#pragma unroll
      for (int r = 0; r < kRows; ++r) wv[u][r] = c < kc ? __ldcs(wr[r] + c) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * 32 + lane;
      if (c >= kc) break;
      float s[kRows];
#pragma unroll
      for (int r = 0; r < kRows; ++r) s[r] = __ldg(sr[r] + c * 16 / kFp8GroupCols);
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const uint4* xm = reinterpret_cast<const uint4*>(x + static_cast<int64_t>(m) * k) + 2 * c;
        const uint4 x0 = __ldg(xm), x1 = __ldg(xm + 1);
#pragma unroll
        for (int r = 0; r < kRows; ++r) acc[m][r] = fmaf(s[r], dot16(wv[u][r], x0, x1), acc[m][r]);
      }
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const float v = warp_sum(acc[m][r]);
      if (lane == m * kRows + r && n0 + r < n) y[static_cast<int64_t>(m) * n + n0 + r] = __float2bfloat16(v);
    }
}

template <int M>
void gemv_m(const bf16* x, const Fp8Weight& w, bf16* y, int n, int k, cudaStream_t stream) {
  const int warps = (n + kRows - 1) / kRows;
  const int blocks = (warps + kWarpsPerBlock - 1) / kWarpsPerBlock;
  fp8_gemv_kernel<M><<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(x, w, y, n, k);
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
  Philox4 r = philox4x32_10(static_cast<uint32_t>(i4), static_cast<uint32_t>(i4 >> 32), 0, 0,
                            static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    if (i4 + j < n) {
      const float u = (r.v[j] >> 8) * (1.0f / 16777216.0f);  // [0, 1)
      bits[i4 + j] = to_e4m3((2.0f * u - 1.0f) * kE4m3Max);
    }
  }
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
  switch (m) {
    case 1: gemv_m<1>(x, w, y, n, k, stream); break;
    case 2: gemv_m<2>(x, w, y, n, k, stream); break;
    case 3: gemv_m<3>(x, w, y, n, k, stream); break;
    case 4: gemv_m<4>(x, w, y, n, k, stream); break;
    case 5: gemv_m<5>(x, w, y, n, k, stream); break;
    case 6: gemv_m<6>(x, w, y, n, k, stream); break;
    case 7: gemv_m<7>(x, w, y, n, k, stream); break;
    default: gemv_m<8>(x, w, y, n, k, stream); break;
  }
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
