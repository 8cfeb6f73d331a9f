// The card's ceilings `baton profile` measures every ratio against, in the
// same run: device copy bandwidth, cuBLASLt's bf16 GEMM rate, the FP8 (W8A8
// block-scaled) GEMM rate through Fp8Gemm, pinned host->device bandwidth.
#pragma once

#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace baton::cuda {

struct Ceilings {
  std::string device;
  double copy_gbps = 0;        // read + write bytes / s
  double gemm_tflops = 0;      // bf16 8192^3 through cuBLASLt
  double fp8_gemm_tflops = 0;  // FP8 8192^3 through Fp8Gemm (128x128 weight blocks, activations quantised)
  std::string fp8_gemm_form;   // Fp8Gemm::w8a8_form(): cuBLASLt's operands, or "none" (dequantised)
  double h2d_pinned_gbps = 0;
};

Result<Ceilings> measure_ceilings();

// The 8192^3 GEMM's rate now, bf16 through cuBLASLt or FP8 (W8A8) through
// Fp8Gemm: the ceilings' GEMM rates, and each prefill row's adjacent rate,
// measured right after the row on the same stream, so in the clocks and
// power state the row ran in (the rate at the start of a run has measured
// 715-824 TFLOP/s on one kind of H200 card, session to session).
struct GemmRate {
  double tflops = 0;
  std::string fp8_form;  // FP8: Fp8Gemm::w8a8_form()
};
Result<GemmRate> measure_gemm_rate(bool fp8, cudaStream_t stream);

// The median of v (0 when empty).
double median(std::vector<double> v);

// The median of `iters` event-timed calls of run(i) on stream s after
// `warmup` untimed ones, in ms.
template <typename Run>
double median_call_ms(int warmup, int iters, cudaStream_t s, Run run) {
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  std::vector<double> t;
  for (int i = 0; i < warmup + iters; ++i) {
    cudaEventRecord(e0, s);
    run(i);
    cudaEventRecord(e1, s);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    if (i >= warmup) t.push_back(ms);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return median(t);
}

}  // namespace baton::cuda
