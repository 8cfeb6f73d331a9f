// The skinny-GEMM kernel behind gemv.cu (bf16 weights) and fp8_kernels.cu
// (e4m3 weights, the W8A16 GEMV): y[m, n] = x[m, k] . w[n, k]^T for m <= 8,
// decode at small batch, bound by streaming w once. Each warp owns 2 rows of w
// and walks k in 16-byte chunks (8 bf16 or 16 e4m3 columns), 4 chunks per row
// in flight per lane; x comes through L1; fp32 accumulation. e4m3 chunks are
// scaled by their row's 128-column group scale (Fp8Weight's layout).
//
// The gated form fuses the SwiGLU activation into the fused gate/up
// projection: w holds 2n rows (gate, then up), a warp owns rows j and j + n,
// and out[m, j] = silu(g) * u with g and u the two products rounded to bf16
// first, exactly as the GEMV followed by silu_mul (ops.cu) computes it, less
// one kernel and one round trip of the [m, 2n] product through memory.
#pragma once

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/kernels.h"

namespace baton::cuda::skinny {

constexpr int kRows = 2;    // rows of w per warp
constexpr int kUnroll = 4;  // chunks per lane per iteration
constexpr int kWarpsPerBlock = 8;
constexpr int kScaleGroupCols = 128;  // e4m3 scales per row, per 128 columns

// The weight: bf16 rows, or e4m3 rows with scales[(r / scale_rows) * scale_ld + c / 128].
struct Weight {
  const void* rows = nullptr;
  const float* scales = nullptr;
  int scale_rows = 128, scale_ld = 0;
};

__device__ __forceinline__ void fma8(float& acc, const uint4& w, const uint4& x) {
  const __nv_bfloat162* wp = reinterpret_cast<const __nv_bfloat162*>(&w);
  const __nv_bfloat162* xp = reinterpret_cast<const __nv_bfloat162*>(&x);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const float2 a = __bfloat1622float2(wp[j]);
    const float2 b = __bfloat1622float2(xp[j]);
    acc = fmaf(a.x, b.x, acc);
    acc = fmaf(a.y, b.y, acc);
  }
}

// Dot of 16 e4m3 weights with 16 bf16 activations.
__device__ __forceinline__ float dot16_e4m3(const uint4& w, const uint4& x0, const uint4& x1) {
  const uint16_t* wp = reinterpret_cast<const uint16_t*>(&w);
  const __nv_bfloat162* xa = reinterpret_cast<const __nv_bfloat162*>(&x0);
  const __nv_bfloat162* xb = reinterpret_cast<const __nv_bfloat162*>(&x1);
  float acc = 0.0f;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(wp[j]), __NV_E4M3);
    const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&h));
    const float2 b = __bfloat1622float2(j < 4 ? xa[j] : xb[j - 4]);
    acc = fmaf(a.x, b.x, acc);
    acc = fmaf(a.y, b.y, acc);
  }
  return acc;
}

__device__ __forceinline__ void out_store(bf16* p, float v) { *p = __float2bfloat16(v); }
__device__ __forceinline__ void out_store(float* p, float v) { *p = v; }

// One warp's outputs: x_rows[m] is row m of x (k values), y_rows[m] row m of
// the output (n values). kFp8: e4m3 rows; M: rows of x; kGated: the SwiGLU
// form (n outputs from 2n rows of w).
template <bool kFp8, int M, typename OutT, bool kGated>
__device__ __forceinline__ void warp_outputs(int warp, const bf16* const (&x_rows)[M], const Weight& w,
                                             OutT* const (&y_rows)[M], int n, int k) {
  constexpr int kChunkCols = kFp8 ? 16 : 8;
  const int lane = threadIdx.x & 31;
  const int n0 = kGated ? warp : warp * kRows;  // the first output this warp computes
  if (n0 >= n) return;
  const int kc = k / kChunkCols;
  float acc[M][kRows];
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[m][r] = 0.0f;
  const uint4* wr[kRows];
  const float* sr[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int row = kGated ? n0 + r * n : min(n0 + r, n - 1);
    wr[r] = reinterpret_cast<const uint4*>(static_cast<const char*>(w.rows) +
                                           static_cast<int64_t>(row) * k * (kFp8 ? 1 : 2));
    sr[r] = kFp8 ? w.scales + static_cast<int64_t>(row / w.scale_rows) * w.scale_ld : nullptr;
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
      if constexpr (kFp8) {
        float s[kRows];
#pragma unroll
        for (int r = 0; r < kRows; ++r) s[r] = __ldg(sr[r] + c * kChunkCols / kScaleGroupCols);
#pragma unroll
        for (int m = 0; m < M; ++m) {
          const uint4* xm = reinterpret_cast<const uint4*>(x_rows[m]) + 2 * c;
          const uint4 x0 = __ldg(xm), x1 = __ldg(xm + 1);
#pragma unroll
          for (int r = 0; r < kRows; ++r) acc[m][r] = fmaf(s[r], dot16_e4m3(wv[u][r], x0, x1), acc[m][r]);
        }
      } else {
#pragma unroll
        for (int m = 0; m < M; ++m) {
          const uint4 xv = __ldg(reinterpret_cast<const uint4*>(x_rows[m]) + c);
#pragma unroll
          for (int r = 0; r < kRows; ++r) fma8(acc[m][r], wv[u][r], xv);
        }
      }
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m) {
    float v[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) v[r] = warp_sum(acc[m][r]);  // every lane holds the sums
    if constexpr (kGated) {
      if (lane == m) {
        const float g = __bfloat162float(__float2bfloat16(v[0])), u = __bfloat162float(__float2bfloat16(v[1]));
        out_store(y_rows[m] + n0, g / (1.0f + __expf(-g)) * u);
      }
    } else {
#pragma unroll
      for (int r = 0; r < kRows; ++r)
        if (lane == m * kRows + r && n0 + r < n) out_store(y_rows[m] + n0 + r, v[r]);
    }
  }
}

// The M rows of dense x [M, k] and y [M, n], as warp_outputs takes them.
template <int M, typename OutT>
__device__ __forceinline__ void dense_rows(const bf16* x, int k, OutT* y, int n, const bf16* (&x_rows)[M],
                                           OutT* (&y_rows)[M]) {
#pragma unroll
  for (int m = 0; m < M; ++m) {
    x_rows[m] = x + static_cast<int64_t>(m) * k;
    y_rows[m] = y + static_cast<int64_t>(m) * n;
  }
}

// The dense form: x [M, k], y [M, n].
template <bool kFp8, int M, typename OutT, bool kGated>
__global__ void __launch_bounds__(32 * kWarpsPerBlock) kernel(const bf16* x, Weight w, OutT* y, int n, int k) {
  const bf16* x_rows[M];
  OutT* y_rows[M];
  dense_rows(x, k, y, n, x_rows, y_rows);
  warp_outputs<kFp8, M, OutT, kGated>(blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5), x_rows, w, y_rows, n, k);
}

// Launches kernel<kFp8, M, OutT, kGated> for m in [1, 8].
template <bool kFp8, typename OutT, bool kGated>
void launch(const bf16* x, const Weight& w, OutT* y, int m, int n, int k, cudaStream_t stream) {
  const int warps = kGated ? n : (n + kRows - 1) / kRows;
  const int blocks = (warps + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const dim3 grid(blocks), block(32 * kWarpsPerBlock);
  switch (m) {
    case 1: kernel<kFp8, 1, OutT, kGated><<<grid, block, 0, stream>>>(x, w, y, n, k); break;
    case 2: kernel<kFp8, 2, OutT, kGated><<<grid, block, 0, stream>>>(x, w, y, n, k); break;
    case 3: kernel<kFp8, 3, OutT, kGated><<<grid, block, 0, stream>>>(x, w, y, n, k); break;
    case 4: kernel<kFp8, 4, OutT, kGated><<<grid, block, 0, stream>>>(x, w, y, n, k); break;
    case 5: kernel<kFp8, 5, OutT, kGated><<<grid, block, 0, stream>>>(x, w, y, n, k); break;
    case 6: kernel<kFp8, 6, OutT, kGated><<<grid, block, 0, stream>>>(x, w, y, n, k); break;
    case 7: kernel<kFp8, 7, OutT, kGated><<<grid, block, 0, stream>>>(x, w, y, n, k); break;
    default: kernel<kFp8, 8, OutT, kGated><<<grid, block, 0, stream>>>(x, w, y, n, k); break;
  }
}

}  // namespace baton::cuda::skinny
