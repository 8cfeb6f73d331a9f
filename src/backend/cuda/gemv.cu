// Skinny GEMMs (decode at small batch): y[m, n] = x[m, k] . w[n, k]^T for
// m <= 8, bound by streaming w once. Each warp owns 2 rows of w and walks k in
// 16-byte chunks, 4 chunks per row in flight per lane; x comes through L1.
#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/kernels.h"

namespace baton::cuda {
namespace {

constexpr int kRows = 2;    // rows of w per warp
constexpr int kUnroll = 4;  // chunks per lane per iteration
constexpr int kWarpsPerBlock = 8;

__device__ __forceinline__ void fma8(float& acc, const uint4& w, const uint4& x) {
  const __nv_bfloat162* wp = reinterpret_cast<const __nv_bfloat162*>(&w);
  const __nv_bfloat162* xp = reinterpret_cast<const __nv_bfloat162*>(&x);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    float2 a = __bfloat1622float2(wp[j]);
    float2 b = __bfloat1622float2(xp[j]);
    acc = fmaf(a.x, b.x, acc);
    acc = fmaf(a.y, b.y, acc);
  }
}

__device__ __forceinline__ void out_store(bf16* p, float v) { *p = __float2bfloat16(v); }
__device__ __forceinline__ void out_store(float* p, float v) { *p = v; }

template <int M, typename OutT>
__global__ void __launch_bounds__(32 * kWarpsPerBlock)
    gemv_kernel(const bf16* x, const bf16* w, OutT* y, int n, int k) {
  const int warp = blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  const int n0 = warp * kRows;
  if (n0 >= n) return;
  const int kc = k / 8;  // 16-byte chunks per row
  float acc[M][kRows];
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[m][r] = 0.0f;
  const uint4* wr[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
    wr[r] = reinterpret_cast<const uint4*>(w + static_cast<int64_t>(min(n0 + r, n - 1)) * k);
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
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const uint4 xv = __ldg(reinterpret_cast<const uint4*>(x + static_cast<int64_t>(m) * k) + c);
#pragma unroll
        for (int r = 0; r < kRows; ++r) fma8(acc[m][r], wv[u][r], xv);
      }
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      float v = warp_sum(acc[m][r]);
      if (lane == m * kRows + r && n0 + r < n) out_store(y + static_cast<int64_t>(m) * n + n0 + r, v);
    }
}

template <int M>
void launch_m(const bf16* x, const bf16* w, void* y, int n, int k, bool y_f32, cudaStream_t stream) {
  const int warps = (n + kRows - 1) / kRows;
  const int blocks = (warps + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (y_f32) gemv_kernel<M, float><<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(x, w, static_cast<float*>(y), n, k);
  else gemv_kernel<M, bf16><<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(x, w, static_cast<bf16*>(y), n, k);
}

}  // namespace

bool gemv_supports(int m, int k) { return m >= 1 && m <= 8 && k % 8 == 0; }

void launch_gemv(const bf16* x, const bf16* w, void* y, int m, int n, int k, bool y_f32, cudaStream_t stream) {
  BATON_CHECK(gemv_supports(m, k), "gemv: m {} k {}", m, k);
  switch (m) {
    case 1: launch_m<1>(x, w, y, n, k, y_f32, stream); break;
    case 2: launch_m<2>(x, w, y, n, k, y_f32, stream); break;
    case 3: launch_m<3>(x, w, y, n, k, y_f32, stream); break;
    case 4: launch_m<4>(x, w, y, n, k, y_f32, stream); break;
    case 5: launch_m<5>(x, w, y, n, k, y_f32, stream); break;
    case 6: launch_m<6>(x, w, y, n, k, y_f32, stream); break;
    case 7: launch_m<7>(x, w, y, n, k, y_f32, stream); break;
    default: launch_m<8>(x, w, y, n, k, y_f32, stream); break;
  }
  BATON_LAUNCH_CHECK();
}

}  // namespace baton::cuda
