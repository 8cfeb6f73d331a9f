// Dense GEMMs through cuBLASLt: y[M, N] = x[M, K] . W[N, K]^T (+ nothing),
// bf16 inputs, fp32 accumulation, bf16 or fp32 output. Plans (descriptors and
// the chosen algorithm) are cached per shape; the workspace is preallocated so
// calls can be captured in a CUDA graph.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <array>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/kernels.h"
#include "common/check.h"
#include "common/status.h"

// Aborts naming the call and its status when a cuBLASLt call fails.
#define BATON_CUBLAS_CHECK(expr)                                                                      \
  do {                                                                                                \
    cublasStatus_t _s = (expr);                                                                       \
    BATON_CHECK(_s == CUBLAS_STATUS_SUCCESS, "cuBLASLt error {} in {}", static_cast<int>(_s), #expr); \
  } while (0)

namespace baton::cuda {

// A cuBLASLt matmul's descriptors (the operation and the layouts of A, B and
// C), destroyed with it; Gemm's and Fp8Gemm's plans hold one.
struct LtMatmulDescriptors {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  LtMatmulDescriptors() = default;
  LtMatmulDescriptors(const LtMatmulDescriptors&) = delete;
  LtMatmulDescriptors& operator=(const LtMatmulDescriptors&) = delete;
  ~LtMatmulDescriptors();
};

// The algorithms cuBLASLt's heuristic proposes for `d` (C also as D) within
// `workspace_bytes`, best first, at most `max`, into *algos; its status
// (NOT_SUPPORTED when it proposes none).
cublasStatus_t lt_heuristic_algos(cublasLtHandle_t handle, const LtMatmulDescriptors& d, size_t workspace_bytes,
                                  std::vector<cublasLtMatmulAlgo_t>* algos, int max = 8);

// The bucket of m whose algorithm choice a GEMM of m rows shares: m itself up
// to 64 (decode batches: each is captured in a graph once), else m rounded up
// to one of 8 steps per power of two (a step is at most 12.5% of m).
int gemm_m_bucket(int m);

// A strided batched GEMM (MLA's per-head projections into and out of the
// latent): for b in [0, batch), y_b[m, n] = x_b[m, k] . w_b[n, k]^T with
// x_b = x + b * x_batch (rows ldx apart), w_b = w + b * w_batch (rows ldw
// apart), y_b = y + b * y_batch (rows ldy apart); element strides, bf16 out.
struct BatchedGemm {
  const bf16* x = nullptr;
  int64_t ldx = 0, x_batch = 0;
  const bf16* w = nullptr;
  int64_t ldw = 0, w_batch = 0;
  bf16* y = nullptr;
  int64_t ldy = 0, y_batch = 0;
  int batch = 0, m = 0, n = 0, k = 0;
};

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
  void run(const bf16* x, const bf16* w, void* y, int m, int n, int k, bool y_f32, cudaStream_t stream);
  // One cuBLASLt call over all b (its heuristic's first algorithm, planned
  // once per shape, strides and alignment). Aborts on a cuBLAS failure.
  void run_batched(const BatchedGemm& g, cudaStream_t stream);

 private:
  struct Plan;
  struct Choice;
  using Key = std::tuple<int, int, int, bool>;  // (m or its bucket, n, k, y_f32)
  // Builds (once per shape) the descriptors. The algorithm is chosen once per
  // bucket of m (m_bucket): the fastest of cuBLASLt's top heuristic algorithms,
  // timed on these very buffers (while `stream` is being captured into a graph,
  // the first instead); other m of the bucket reuse it when cuBLASLt accepts it
  // for their shape. Serving steps see many distinct token counts (a decode
  // batch plus a prefill chunk), and timing ~50 launches for each would stall
  // every step that brings a new one.
  Plan* plan(const bf16* x, const bf16* w, void* y, int m, int n, int k, bool y_f32, cudaStream_t stream);
  Choice time_candidates(Plan& p, const bf16* x, const bf16* w, void* y, int m, int n, int k, bool y_f32,
                         cudaStream_t stream);

  bool row_invariant_ = false;
  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
  std::map<Key, std::unique_ptr<Plan>> plans_;      // per exact shape
  std::map<Key, std::unique_ptr<Choice>> choices_;  // per bucket of m
  using BatchedKey = std::array<int64_t, 13>;
  std::map<BatchedKey, std::unique_ptr<Plan>> batched_plans_;
};

}  // namespace baton::cuda
