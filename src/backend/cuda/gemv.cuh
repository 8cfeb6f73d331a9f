// The skinny-GEMM kernel behind gemv.cu (bf16 weights) and fp8_kernels.cu
// (e4m3 weights, the W8A16 GEMV): y[m, n] = x[m, k] . w[n, k]^T for m <= 8,
// decode at small batch, bound by streaming w once. Each warp owns 2 rows of w
// and walks k in 16-byte chunks (8 bf16 or 16 e4m3 columns), 4 chunks per row
// in flight per lane (2 in the one-row e4m3 residual-add form); x comes
// through L1; fp32 accumulation. e4m3 chunks are
// scaled by their row's 128-column group scale (Fp8Weight's layout).
//
// The gated form fuses the SwiGLU activation into the fused gate/up
// projection: w holds 2n rows (gate, then up), a warp owns rows j and j + n,
// and out[m, j] = silu(g) * u with g and u the two products rounded to bf16
// first, exactly as the GEMV followed by silu_mul (ops.cu) computes it, less
// one kernel and one round trip of the [m, 2n] product through memory.
//
// Decode at 1 or 2 rows on one rank also fuses what surrounds a linear: the
// norm-in form computes x = rmsnorm(residual) * weight into shared memory
// first (each block for itself, rounded to bf16 as add_rmsnorm rounds it),
// and the residual-add form adds its bf16-rounded outputs (and a bias) into
// the fp32 residual, as add_rmsnorm adds them. So a dense layer's two norms
// run inside its qkv and gate/up GEMVs, one launch each fewer.
#pragma once

#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <algorithm>
#include <type_traits>

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

// x's 16-byte chunk: through the read-only path from global memory, or from
// shared memory (the norm-in form's rows).
template <bool kShared>
__device__ __forceinline__ uint4 load_x(const uint4* p) {
  if constexpr (kShared) return *p;
  else return __ldg(p);
}

// What the warp does with its sums: store them, or (kResidualAdd, fp32 rows)
// add them rounded to bf16, then bias[j] when there is one, into the row.
enum class Epilogue { kStore, kResidualAdd };

// How warp_outputs walks k in passes of 32 * kU chunks a row:
//   kChecked  every pass checks each lane's chunk against k;
//   kFull     the full passes run without the checks, the last one with them;
//   kOneWait  kFull, and each full pass (one row of bf16 x) loads x before
//             its products and makes every product wait on all of the pass's
//             weight loads (below), so a lane waits on memory once a pass.
// The sums and their order are the same in all three.
enum class Passes { kChecked, kFull, kOneWait };

// The first output warp `warp` computes, and its rows of w (wr: 16-byte
// chunks; sr: e4m3 scales).
template <bool kFp8, bool kGated>
__device__ __forceinline__ int warp_rows(int warp, const Weight& w, int n, int k, const uint4* (&wr)[kRows],
                                         const float* (&sr)[kRows]) {
  const int n0 = kGated ? warp : warp * kRows;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int row = kGated ? n0 + r * n : min(n0 + r, n - 1);
    wr[r] = reinterpret_cast<const uint4*>(static_cast<const char*>(w.rows) +
                                           static_cast<int64_t>(row) * k * (kFp8 ? 1 : 2));
    sr[r] = kFp8 ? w.scales + static_cast<int64_t>(row / w.scale_rows) * w.scale_ld : nullptr;
  }
  return n0;
}

// One warp's outputs: x_rows[m] is row m of x (k values), y_rows[m] row m of
// the output (n values). kFp8: e4m3 rows; M: rows of x; kGated: the SwiGLU
// form (n outputs from 2n rows of w); kXShared: x is in shared memory; kU:
// chunks per lane in flight (the order of the sums does not depend on it);
// kPasses: Passes above.
template <bool kFp8, int M, typename OutT, bool kGated, bool kXShared = false, Epilogue kEpi = Epilogue::kStore,
          int kU = kUnroll, Passes kPasses = Passes::kChecked>
__device__ __forceinline__ void warp_outputs(int warp, const bf16* const (&x_rows)[M], const Weight& w,
                                             OutT* const (&y_rows)[M], int n, int k, const bf16* bias = nullptr) {
  static_assert(kEpi == Epilogue::kStore || (!kGated && std::is_same_v<OutT, float>), "residual rows are fp32");
  static_assert(kPasses != Passes::kOneWait || (!kFp8 && M == 1), "the one-wait passes: one row, bf16 weights");
  constexpr int kChunkCols = kFp8 ? 16 : 8;
  const int lane = threadIdx.x & 31;
  const uint4* wr[kRows];
  const float* sr[kRows];
  const int n0 = warp_rows<kFp8, kGated>(warp, w, n, k, wr, sr);  // the first output this warp computes
  if (n0 >= n) return;
  const int kc = k / kChunkCols;
  float acc[M][kRows];
#pragma unroll
  for (int m = 0; m < M; ++m)
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[m][r] = 0.0f;
  // The residual-add form: the lane that adds output (m, r) reads the
  // residual's value now, not after its loads, so the kernel's last warps do
  // not wait on it (on an H200, Llama-3.1-8B's o_proj and down: 22.3 ->
  // 22.0 us together, median).
  float addend = 0.0f;
  if constexpr (kEpi == Epilogue::kResidualAdd) {
#pragma unroll
    for (int m = 0; m < M; ++m)
#pragma unroll
      for (int r = 0; r < kRows; ++r)
        if (lane == m * kRows + r && n0 + r < n) addend = y_rows[m][n0 + r];
  }
  // One pass: each lane's kU chunks of each row, loaded, then multiplied.
  // checked (std::true_type): a pass where a lane's chunk may lie past k.
  auto pass = [&](auto checked, int c0) {
    constexpr bool kChecked = decltype(checked)::value;
    uint4 wv[kU][kRows];
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int c = c0 + u * 32 + lane;
#pragma unroll
      for (int r = 0; r < kRows; ++r) wv[u][r] = !kChecked || c < kc ? __ldcs(wr[r] + c) : make_uint4(0, 0, 0, 0);
    }
    // The one-wait pass: x's chunks load now, behind the weights, then each
    // of their words is ORed with g, which is 0 (no row of w has 2^30
    // columns) but depends on one word of every weight load. So ptxas can
    // place no product before the pass's last weight load, and the lane's
    // x loads are in flight with its weights: one memory wait a pass, where
    // the checked and full passes issued part of the weights, waited for them
    // and x, and then issued the rest (SASS, docs/gpu-notes.md, session 29).
    if constexpr (kPasses == Passes::kOneWait && !kChecked) {
      uint4 xv[kU];
#pragma unroll
      for (int u = 0; u < kU; ++u)
        xv[u] = load_x<kXShared>(reinterpret_cast<const uint4*>(x_rows[0]) + c0 + u * 32 + lane);
      uint32_t t = 0;
#pragma unroll
      for (int u = 0; u < kU; ++u)
#pragma unroll
        for (int r = 0; r < kRows; ++r) t |= wv[u][r].x;
      const uint32_t g = (t >> 31) & (static_cast<uint32_t>(k) >> 30);
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        xv[u].x |= g;
        xv[u].y |= g;
        xv[u].z |= g;
        xv[u].w |= g;
#pragma unroll
        for (int r = 0; r < kRows; ++r) fma8(acc[0][r], wv[u][r], xv[u]);
      }
      return;
    }
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int c = c0 + u * 32 + lane;
      if (kChecked && c >= kc) break;
      if constexpr (kFp8) {
        float s[kRows];
#pragma unroll
        for (int r = 0; r < kRows; ++r) s[r] = __ldg(sr[r] + c * kChunkCols / kScaleGroupCols);
#pragma unroll
        for (int m = 0; m < M; ++m) {
          const uint4* xm = reinterpret_cast<const uint4*>(x_rows[m]) + 2 * c;
          const uint4 x0 = load_x<kXShared>(xm), x1 = load_x<kXShared>(xm + 1);
#pragma unroll
          for (int r = 0; r < kRows; ++r) acc[m][r] = fmaf(s[r], dot16_e4m3(wv[u][r], x0, x1), acc[m][r]);
        }
      } else {
#pragma unroll
        for (int m = 0; m < M; ++m) {
          const uint4 xv = load_x<kXShared>(reinterpret_cast<const uint4*>(x_rows[m]) + c);
#pragma unroll
          for (int r = 0; r < kRows; ++r) fma8(acc[m][r], wv[u][r], xv);
        }
      }
    }
  };
  // kFull and kOneWait: the passes where every lane's chunks exist run
  // without bound checks, the last one with them. It moves ptxas's loads: with the checks the bf16 one-row residual-add
  // issued 2 of a pass's 8 loads before its first product and 6 after it, so
  // a lane waited on memory twice a pass; without, 4 and 4 (SASS, session 26).
  // Where it was measured to pay it is on: the one-row dense form and the MoE
  // experts' one-row kernel (Qwen3-30B-A3B batch 1: 0.981 of the step on an
  // H100; 0.967 on an H200 with every bf16 form so built). The norm-in and
  // residual-add forms keep the checks: without, Llama-3.1-8B batch 1 ran
  // 1.014 (bf16) and 1.049 (FP8) of the step on the H200.
  if constexpr (kPasses != Passes::kChecked) {
    const int full = kc - kc % (32 * kU);
    for (int c0 = 0; c0 < full; c0 += 32 * kU) pass(std::false_type{}, c0);
    if (full < kc) pass(std::true_type{}, full);
  } else {
    for (int c0 = 0; c0 < kc; c0 += 32 * kU) pass(std::true_type{}, c0);
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
      for (int r = 0; r < kRows; ++r) {
        if (lane != m * kRows + r || n0 + r >= n) continue;
        if constexpr (kEpi == Epilogue::kResidualAdd) {
          float x = addend + __bfloat162float(__float2bfloat16(v[r]));
          if (bias != nullptr) x += __bfloat162float(bias[n0 + r]);
          y_rows[m][n0 + r] = x;
        } else {
          out_store(y_rows[m] + n0 + r, v[r]);
        }
      }
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

// Warps that compute n outputs (gated: one output a warp, from 2 rows; else
// kRows a warp), and the blocks of kWarpsPerBlock that hold them.
__host__ __device__ constexpr int warps_for(int n, bool gated) { return gated ? n : (n + kRows - 1) / kRows; }
__host__ __device__ constexpr int blocks_for(int n, bool gated) {
  return (warps_for(n, gated) + kWarpsPerBlock - 1) / kWarpsPerBlock;
}

// The dense form: x [M, k], y [M, n].
template <bool kFp8, int M, typename OutT, bool kGated>
__global__ void __launch_bounds__(32 * kWarpsPerBlock) kernel(const bf16* x, Weight w, OutT* y, int n, int k) {
  pdl_wait();
  const bf16* x_rows[M];
  OutT* y_rows[M];
  dense_rows(x, k, y, n, x_rows, y_rows);
  warp_outputs<kFp8, M, OutT, kGated, false, Epilogue::kStore, kUnroll,
               !kFp8 && M == 1 ? Passes::kFull : Passes::kChecked>(blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5),
                                                                   x_rows, w, y_rows, n, k);
}

// x = rmsnorm(residual) * weight, the norm-in form's input.
struct NormIn {
  const float* residual = nullptr;  // [M, k] fp32
  const bf16* weight = nullptr;     // [k]
  float eps = 0.0f;
};

// xs[m, :] = bf16(weight * (r * rsqrt(mean(r^2) + eps))) for r = in.residual's
// row m, by the whole block (kThreads threads), as add_rmsnorm (ops.cu) rounds
// it; k % 4 == 0. Ends with a barrier: xs is ready for every warp.
// kPre: the norm's weight (a weight, so settled before the kernel before)
// was read before the programmatic wait into `pre` (load_norm_weight_early):
// a thread's first kNormWeightEarly uint2 chunks (4 columns each). It paid in
// the one-token router (moe_router.cu); in Llama's norm-in GEMVs it did not
// (H100, session 31: 1.002 of the step at batch 1).
constexpr int kNormWeightEarly = 4;
struct NormWeightEarly {
  uint2 w[kNormWeightEarly];
};
template <int kThreads>
__device__ __forceinline__ void load_norm_weight_early(const NormIn& in, int k, NormWeightEarly& pre) {
#pragma unroll
  for (int j = 0; j < kNormWeightEarly; ++j) {
    const int i = threadIdx.x + j * kThreads;
    if (i < k / 4) pre.w[j] = reinterpret_cast<const uint2*>(in.weight)[i];
  }
}

template <int M, int kThreads, bool kPre = false>
__device__ __forceinline__ void norm_rows(const NormIn& in, int k, bf16* xs, const NormWeightEarly& pre = {}) {
  __shared__ float partial[M][kThreads / 32];
  const int n4 = k / 4, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float4* r = reinterpret_cast<const float4*>(in.residual + static_cast<int64_t>(m) * k);
    float ss = 0.0f;
    for (int i = threadIdx.x; i < n4; i += kThreads) {
      const float4 x = r[i];
      ss += x.x * x.x + x.y * x.y + x.z * x.z + x.w * x.w;
    }
    ss = warp_sum(ss);
    if (lane == 0) partial[m][warp] = ss;
  }
  __syncthreads();
#pragma unroll
  for (int m = 0; m < M; ++m) {
    float ss = 0.0f;
#pragma unroll
    for (int j = 0; j < kThreads / 32; ++j) ss += partial[m][j];
    const float inv = rsqrtf(ss / k + in.eps);
    const float4* r = reinterpret_cast<const float4*>(in.residual + static_cast<int64_t>(m) * k);
    const auto put = [&](int i, const uint2& wv) {
      const float4 x = r[i];
      const float2 w0 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&wv.x));
      const float2 w1 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&wv.y));
      __nv_bfloat162* o = reinterpret_cast<__nv_bfloat162*>(xs + static_cast<int64_t>(m) * k) + 2 * i;
      o[0] = __floats2bfloat162_rn(w0.x * (x.x * inv), w0.y * (x.y * inv));
      o[1] = __floats2bfloat162_rn(w1.x * (x.z * inv), w1.y * (x.w * inv));
    };
    int i = threadIdx.x;
    if constexpr (kPre) {
#pragma unroll
      for (int j = 0; j < kNormWeightEarly; ++j, i += kThreads)
        if (i < n4) put(i, pre.w[j]);
    }
    for (; i < n4; i += kThreads) put(i, reinterpret_cast<const uint2*>(in.weight)[i]);
  }
  __syncthreads();
}

// The norm-in form: x = rmsnorm(in.residual) * in.weight (dynamic shared
// memory of M * k bf16), y [M, n] bf16, plain or gated. The grid is at most
// one wave of blocks (launch_norm_in; a block per 8 warps' outputs for bf16
// weights at one row) and each warp strides over the outputs, so
// the norm runs once per resident block, not once per 8 warps' outputs. On
// an H200 (Llama-3.1-8B, batch 1, each kernel alone) the gated e4m3 GEMV
// took 37.4 us with a block per 8 outputs (1,792 norms), 34.5 us with one
// wave (396 blocks), against 33.5 us for the plain kernel after a separate
// add_rmsnorm of 3.2 us; in the step, FP8 batch 2 took 3.87 ms with a block
// per 8 outputs, 3.46 with one wave (3.63 unfused). bf16 steps were level
// between the two grids. Asking L2 for each warp's first chunks before the
// norm made the qkv GEMV slower (16.0 -> 16.9 us).
//
// Within one wave the grid is balanced (norm_in_grid): the rounds a warp
// strides (its outputs) are those one wave needs, and the blocks the fewest
// that keep them, so no round is left to part of the warps. Llama-3.1-8B
// FP8's gate/up at one row: 359 blocks of 5 rounds, where 396 left its last
// round to 1,664 of 3,168 warps. On an H100 (session 33, 4-5 runs a side in
// two calls) FP8 batch 1 ran 0.990-0.995 of the step, batch 2 0.987-0.988;
// bf16 batch 2 0.990; batch 1 of bf16 and Qwen3-30B-A3B takes other forms.
//
// Registers: __launch_bounds__ names a minimum of one block an SM, which
// lets ptxas give the bf16 forms 79-80 registers a thread at one row (60
// without it: 3 blocks an SM, not 4) and the two-row forms 92-106 (64-98).
// On an H200 Llama-3.1-8B bf16 batch 1 took 0.984x the step, 3 runs a side
// in one call (docs/gpu-notes.md, session 24); e4m3 batch 2 0.994x. The e4m3
// one-row forms keep the default (0: ptxas gives them 80, with 1 it gives
// 88, not measured; capped at 64 they were level).
constexpr int norm_in_min_blocks(bool fp8, int rows) { return fp8 && rows == 1 ? 0 : 1; }
template <bool kFp8, int M, bool kGated, bool kLate = false>
__global__ void __launch_bounds__(32 * kWarpsPerBlock, norm_in_min_blocks(kFp8, M))
    norm_in_kernel(NormIn in, Weight w, bf16* y, int n, int k) {
  pdl_wait<!kLate>();
  extern __shared__ uint4 xs_chunks[];
  bf16* xs = reinterpret_cast<bf16*>(xs_chunks);
  const int first_warp = blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5);
  norm_rows<M, 32 * kWarpsPerBlock>(in, k, xs);
  const bf16* x_rows[M];
  bf16* y_rows[M];
  dense_rows(xs, k, y, n, x_rows, y_rows);
  for (int warp = first_warp; warp < warps_for(n, kGated); warp += gridDim.x * kWarpsPerBlock)
    warp_outputs<kFp8, M, bf16, kGated, true>(warp, x_rows, w, y_rows, n, k);
  if constexpr (kLate) pdl_trigger();
}

// The residual-add form: residual [M, n] += bf16(x . w^T) (+ bias). e4m3
// weights at one row keep 2 chunks a lane in flight, not 4: on an H200
// (Llama-3.1-8B FP8, batch 1, o_proj and down) the step took 2.814-2.849 ms
// against 2.861-2.882 with 4, in two calls; 1 chunk took 3.37-3.40. The
// norm-in forms were level with 2 and slower with 1, and splitting k over
// 2 or 4 warps of a block was slower in the step (2.91-3.19 ms), though
// faster alone.
//
// bf16 weights at one row walk k in one-wait passes (Passes::kOneWait) and
// are held to 64 registers a thread (the minimum of 4 blocks an SM below),
// the 4 blocks an SM the checked form had at 56-58; the gate alone takes 68
// (3 blocks). On an H100 (session 29, with the gate in the dense, MoE and
// norm-in one-row forms too) these kernels' in-step cost fell 1,646 ->
// 1,588 us (Llama-3.1-8B batch 1) and 388 -> 328 us (Qwen3-30B-A3B). In
// this form alone (session 30, H100, 5 runs each) the decode step at batch 1
// ran 0.985 of main's (Llama-3.1-8B bf16), 0.998 (FP8 block) and 0.981
// (Qwen3-30B-A3B); batch 2 0.991-0.995.
constexpr int residual_add_min_blocks(bool fp8, int rows) { return !fp8 && rows == 1 ? 4 : 0; }
template <bool kFp8, int M, bool kLate = false>
__global__ void __launch_bounds__(32 * kWarpsPerBlock, residual_add_min_blocks(kFp8, M))
    residual_add_kernel(const bf16* x, Weight w, const bf16* bias, float* residual, int n, int k) {
  pdl_wait<!kLate>();
  const bf16* x_rows[M];
  float* y_rows[M];
  dense_rows(x, k, residual, n, x_rows, y_rows);
  constexpr int kU = kFp8 && M == 1 ? 2 : kUnroll;
  constexpr Passes kPasses = !kFp8 && M == 1 ? Passes::kOneWait : Passes::kChecked;
  warp_outputs<kFp8, M, float, false, false, Epilogue::kResidualAdd, kU, kPasses>(
      blockIdx.x * kWarpsPerBlock + (threadIdx.x >> 5), x_rows, w, y_rows, n, k, bias);
  if constexpr (kLate) pdl_trigger();
}

// Rows the fused forms take, and the norm-in form's shared memory.
constexpr int kFusedMaxRows = 2;
constexpr int kNormInMaxSmemBytes = 48 << 10;

inline bool residual_add_supports(int m, int k, bool fp8) {
  return m >= 1 && m <= kFusedMaxRows && k % (fp8 ? 16 : 8) == 0;
}
inline bool norm_in_supports(int m, int k, bool fp8) {
  return residual_add_supports(m, k, fp8) && static_cast<int64_t>(m) * k * 2 <= kNormInMaxSmemBytes;
}

// The norm-in grid for `blocks` blocks of outputs when at most `one_wave`
// are resident at once: the fewest rounds (outputs a warp strides over) one
// wave allows, then the fewest blocks that keep that many rounds.
__host__ __device__ constexpr int norm_in_grid(int blocks, int one_wave) {
  const int rounds = (blocks + one_wave - 1) / one_wave;
  return (blocks + rounds - 1) / rounds;
}
static_assert(norm_in_grid(1792, 396) == 359 && norm_in_grid(384, 396) == 384 && norm_in_grid(792, 396) == 396);

// Blocks of `kernel` (32 * kWarpsPerBlock threads, smem bytes) resident on
// the current device at once: the norm-in grid's cap.
inline int one_wave_blocks(const void* kernel, size_t smem) {
  int per_sm = 0;
  BATON_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, 32 * kWarpsPerBlock, smem) == cudaSuccess,
              "gemv norm-in: the device's occupancy");
  return device_sm_count() * (per_sm > 0 ? per_sm : 1);
}

// How the fused forms launch. bf16 weights at 2 rows: the ordinary way, not
// by launch_pdl (every other decode kernel's way): on an H200, blocks of theirs made
// resident early, to wait for the kernel before, slowed the step
// (Llama-3.1-8B bf16 batch 1: 4.44 ms launched plainly, 5.25 with all
// launches programmatic; launching only residual-add programmatically: 4.49).
// bf16 weights at one row (kLate): by launch_pdl, each kernel letting the
// next launch only at its end (pdl_wait<false>, then pdl_trigger), and the
// norm-in form with a block per 8 warps' outputs rather than one wave.
// On an H200, Llama-3.1-8B bf16 batch 1 went 4.451-4.457 -> 4.355-4.396 ms
// (3 runs a side in one call; 4.422-4.438 -> 4.321-4.322 in a lab build's
// call); at 2 rows the same launches made bf16 batch 2 2-3.5% slower.
// e4m3 weights at one row: by launch_pdl too, the norm-in form late on its
// balanced one-wave grid, the residual-add form letting the next kernel
// launch at its start (pdl_wait<true>). Before the balanced grid these
// launches made FP8 batch 1 7-15% slower (sessions 18, 25 and 29); with it,
// on an H100 (session 33, 5 runs a side), FP8 batch 1 ran 0.989 of the step
// launched plainly (3.394-3.410 against 3.444-3.471 ms), batch 2 0.997; the
// norm-in forms late alone 0.998, with o's residual-add 0.994. e4m3 weights
// at 2 rows launch the same way: FP8 batch 2 0.989 of the plain launches on
// an H100 (session 34, 4 runs a side; 3.677-3.704 against 3.735-3.747 ms),
// batch 1 and prefill level; the bf16 2-row forms so launched were level
// (bf16 batch 2 0.9985), so they stay plain.

template <bool kFp8, bool kGated>
void launch_norm_in(const NormIn& in, const Weight& w, bf16* y, int m, int n, int k, cudaStream_t stream) {
  const size_t smem = static_cast<size_t>(m) * k * sizeof(bf16);
  const dim3 block(32 * kWarpsPerBlock);
  auto one_wave_grid = [&](auto kernel) {
    return dim3(norm_in_grid(blocks_for(n, kGated), one_wave_blocks(reinterpret_cast<const void*>(kernel), smem)));
  };
  if (m == 1) {  // kLate
    const auto kernel = norm_in_kernel<kFp8, 1, kGated, true>;
    launch_pdl(kernel, kFp8 ? one_wave_grid(kernel) : dim3(blocks_for(n, kGated)), block, smem, stream, in, w, y, n, k);
    return;
  }
  if constexpr (kFp8) {  // kLate at 2 rows too
    const auto kernel = norm_in_kernel<kFp8, 2, kGated, true>;
    launch_pdl(kernel, one_wave_grid(kernel), block, smem, stream, in, w, y, n, k);
    return;
  }
  const auto kernel = norm_in_kernel<kFp8, 2, kGated>;
  kernel<<<one_wave_grid(kernel), block, smem, stream>>>(in, w, y, n, k);
}

template <bool kFp8>
void launch_residual_add(const bf16* x, const Weight& w, const bf16* bias, float* residual, int m, int n, int k,
                         cudaStream_t stream) {
  const dim3 grid(blocks_for(n, false)), block(32 * kWarpsPerBlock);
  if (m == 1) {
    // bf16: kLate, unless the grid is at most a block an SM: then all its
    // blocks are resident at once and the next kernel's early blocks can
    // displace none, so it may launch at once (its blocks wait for this
    // kernel's end). Qwen3-30B-A3B's o projection (128 blocks): its decode
    // step at one token 0.996 of the late launch's on an H100 (session 31).
    // e4m3: always at once, at 2 rows too (above).
    if constexpr (!kFp8) {
      if (static_cast<int>(grid.x) > device_sm_count()) {
        launch_pdl(residual_add_kernel<kFp8, 1, true>, grid, block, 0, stream, x, w, bias, residual, n, k);
        return;
      }
    }
    launch_pdl(residual_add_kernel<kFp8, 1, false>, grid, block, 0, stream, x, w, bias, residual, n, k);
    return;
  }
  if constexpr (kFp8)
    launch_pdl(residual_add_kernel<kFp8, 2, false>, grid, block, 0, stream, x, w, bias, residual, n, k);
  else residual_add_kernel<kFp8, 2><<<grid, block, 0, stream>>>(x, w, bias, residual, n, k);
}

// Launches kernel<kFp8, M, OutT, kGated> for m in [1, 8].
template <bool kFp8, typename OutT, bool kGated>
void launch(const bf16* x, const Weight& w, OutT* y, int m, int n, int k, cudaStream_t stream) {
  const dim3 grid(blocks_for(n, kGated)), block(32 * kWarpsPerBlock);
  switch (m) {
    case 1: launch_pdl(kernel<kFp8, 1, OutT, kGated>, grid, block, 0, stream, x, w, y, n, k); break;
    case 2: launch_pdl(kernel<kFp8, 2, OutT, kGated>, grid, block, 0, stream, x, w, y, n, k); break;
    case 3: launch_pdl(kernel<kFp8, 3, OutT, kGated>, grid, block, 0, stream, x, w, y, n, k); break;
    case 4: launch_pdl(kernel<kFp8, 4, OutT, kGated>, grid, block, 0, stream, x, w, y, n, k); break;
    case 5: launch_pdl(kernel<kFp8, 5, OutT, kGated>, grid, block, 0, stream, x, w, y, n, k); break;
    case 6: launch_pdl(kernel<kFp8, 6, OutT, kGated>, grid, block, 0, stream, x, w, y, n, k); break;
    case 7: launch_pdl(kernel<kFp8, 7, OutT, kGated>, grid, block, 0, stream, x, w, y, n, k); break;
    default: launch_pdl(kernel<kFp8, 8, OutT, kGated>, grid, block, 0, stream, x, w, y, n, k); break;
  }
}

}  // namespace baton::cuda::skinny
