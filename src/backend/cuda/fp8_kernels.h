// FP8 (e4m3) weights on the device and the kernels around them: the
// per-token-group activation quantiser feeding the W8A8 GEMM (fp8_gemm.h)
// and the norm and SwiGLU forms that quantise their own output for it,
// the W8A16 GEMV that decode's small batches use, and the dequantiser (FP8
// weights the GEMMs cannot take in FP8, and the load of tensors kept in bf16).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/kernels.h"

namespace baton::cuda {

// Columns per scale group along k (activations and weights alike).
constexpr int kFp8GroupCols = 128;

// An FP8 Linear weight on the device: w[r][c] = e4m3(bits[r][c]) *
// scales[(r / scale_rows) * scale_ld + c / 128]. scale_rows is 128 (the
// checkpoint's 128x128 blocks, the layout cuBLASLt's BLK128x128_32F mode
// reads) or 1 (one scale row per weight row: fused parts whose rows are not
// 128-aligned, per-tensor scales). scale_ld >= ceil(k / 128), a multiple of 4.
struct Fp8Weight {
  const uint8_t* bits = nullptr;  // [n, k]
  const float* scales = nullptr;
  int scale_rows = 128;
  int scale_ld = 0;
  bool present() const { return bits != nullptr; }
};

// The scale columns an FP8 weight of k columns stores per scale row.
inline int fp8_scale_ld(int64_t k) { return static_cast<int>(((k + kFp8GroupCols - 1) / kFp8GroupCols + 3) / 4 * 4); }

// Per-token-group quantisation (DeepSeek-V3 / vLLM): for each row r < m and
// group g of 128 columns, s = amax / 448 (1 when the group is all zeros),
// q[r][c] = e4m3(x[r][c] / s) rounded to nearest even, saturated;
// scales[g * m + r] = s (group-major: cuBLASLt's VEC128_32F layout).
void launch_fp8_quantize_groups(const bf16* x, int m, int k, uint8_t* q, float* scales, cudaStream_t stream);
// Producers that quantise their own output so, ahead of a W8A8 GEMM
// (Fp8Gemm::run_quantized), bit for bit as launch_fp8_quantize_groups
// quantises the bf16 rows their unfused forms write (kernels.h), without
// writing or reading those rows (ops.cu):
//  - launch_add_rmsnorm's norm (no `rows`), hidden % 128 == 0;
//  - launch_silu_mul, inter % 128 == 0.
void launch_add_rmsnorm_fp8(float* residual, const bf16* add, const bf16* add_bias, const bf16* weight, uint8_t* q,
                            float* q_scales, int num_rows, int hidden, float eps, cudaStream_t stream);
void launch_silu_mul_fp8(const bf16* gu, uint8_t* q, float* q_scales, int num_rows, int inter, cudaStream_t stream);

// W8A16 GEMV for small batches: y[m, n] = x[m, k] . w^T with w dequantised
// on the fly, fp32 accumulation; bound by streaming the e4m3 bytes once.
bool fp8_gemv_supports(int m, int k);
void launch_fp8_gemv(const bf16* x, const Fp8Weight& w, bf16* y, int m, int n, int k, cudaStream_t stream);
// The same with the SwiGLU activation fused, as launch_gemv_silu_mul (kernels.h):
// w is [2 * inter, k], out[m, j] = silu(bf16(x.w[j])) * bf16(x.w[inter + j]).
void launch_fp8_gemv_silu_mul(const bf16* x, const Fp8Weight& w, bf16* out, int m, int inter, int k,
                              cudaStream_t stream);
// The fused forms of launch_gemv_norm_in and launch_gemv_residual_add
// (kernels.h) over e4m3 weights.
void launch_fp8_gemv_norm_in(const GemvNormIn& in, const Fp8Weight& w, bf16* y, int m, int n, int k, bool gated,
                             cudaStream_t stream);
void launch_fp8_gemv_residual_add(const bf16* x, const Fp8Weight& w, const bf16* bias, float* residual, int m, int n,
                                  int k, cudaStream_t stream);

// out[r][c] = bf16(e4m3(bits[r][c]) * scale) for a [rows, cols] slice whose
// element (r, c) is element (r + row0, c + col0) of a weight with block
// scales scales[((r + row0) / block_rows) * scale_ld + (c + col0) / block_cols]
// (per-tensor: block_rows = block_cols = INT32_MAX, one scale).
struct Fp8DequantArgs {
  const uint8_t* bits = nullptr;
  const float* scales = nullptr;
  bf16* out = nullptr;
  int64_t rows = 0, cols = 0, row0 = 0, col0 = 0;
  int block_rows = 128, block_cols = 128, scale_ld = 0;
};
void launch_fp8_dequantize(const Fp8DequantArgs& a, cudaStream_t stream);

// Random FP8 weights (benchmarks): bits[i] = e4m3(uniform(-448, 448)) from
// (seed, i); with every scale a / 448 the weight is ~uniform(-a, a).
void launch_fp8_fill_random(uint8_t* bits, int64_t n, uint64_t seed, cudaStream_t stream);
void launch_fill_const_f32(float* x, int64_t n, float value, cudaStream_t stream);

}  // namespace baton::cuda
