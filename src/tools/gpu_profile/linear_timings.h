// The linears of a dense layer timed alone, on random weights, where the
// profile wants to know how much of a step they take: the prefill's GEMMs
// against the GEMM ceiling, and decode's skinny products (GEMVs) against the
// copy bandwidth, each launched by itself (the planner's per-linear costs).
// Inside a decode step's graph programmatic launches overlap them, so their
// sum can exceed the step: where a step's time goes is --kernel-costs'.
#pragma once

#include <cuda_runtime.h>

#include "common/json.h"
#include "common/status.h"
#include "model/model_config.h"

namespace baton::cuda {

// The four GEMMs of a dense bf16 layer at `m` tokens (fused qkv, o, fused
// gate/up, down), each as the prefill runs it, against `ceiling_tflops`.
Result<Json> time_layer_gemms(const ModelConfig& c, int m, double ceiling_tflops, cudaStream_t s);

// Decode's linears at `m` rows (m <= 8): the four of a dense layer, in FP8
// (Fp8Gemm's W8A16 GEMV) when the model is quantised, else bf16, and the bf16
// LM head. Each weight is read from several copies in turn, more bytes than
// the L2 holds, as a step reads each weight once; the bytes per call over its
// median time, against `copy_gbps`. Also the sum over the model's layers.
Result<Json> time_decode_linears(const ModelConfig& c, int m, double copy_gbps, cudaStream_t s);

}  // namespace baton::cuda
