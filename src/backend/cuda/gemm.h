// Dense GEMMs through cuBLASLt: y[M, N] = x[M, K] . W[N, K]^T (+ nothing),
// bf16 inputs, fp32 accumulation, bf16 or fp32 output. Plans (descriptors and
// the chosen algorithm) are cached per shape; the workspace is preallocated so
// calls can be captured in a CUDA graph.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <tuple>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/kernels.h"
#include "common/status.h"

namespace baton::cuda {

class Gemm {
 public:
  Gemm();
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  Status init(size_t workspace_bytes = 64u << 20);
  // Batch-invariant mode: every GEMM through launch_gemm_row_invariant.
  void set_row_invariant(bool on) { row_invariant_ = on; }

  // y = x . w^T; y_f32 selects a float output. Aborts on a cuBLAS failure
  // (shapes are validated by the caller at load).
  void run(const bf16* x, const bf16* w, void* y, int m, int n, int k, bool y_f32,
           cudaStream_t stream);

 private:
  struct Plan;
  // Builds (once per shape) the descriptors and picks the fastest of
  // cuBLASLt's top heuristic algorithms by timing them on these very buffers;
  // while `stream` is being captured into a graph it takes the first instead.
  Plan* plan(const bf16* x, const bf16* w, void* y, int m, int n, int k, bool y_f32, cudaStream_t stream);

  bool row_invariant_ = false;
  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
  std::map<std::tuple<int, int, int, bool>, std::unique_ptr<Plan>> plans_;
};

}  // namespace baton::cuda
