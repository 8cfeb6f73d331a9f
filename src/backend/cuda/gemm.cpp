#include "backend/cuda/gemm.h"

#include "backend/cuda/cublaslt_library.h"

#include "common/check.h"
#include "common/log.h"

namespace baton::cuda {

LtMatmulDescriptors::~LtMatmulDescriptors() {
  if (desc) cublasLtMatmulDescDestroy(desc);
  if (a) cublasLtMatrixLayoutDestroy(a);
  if (b) cublasLtMatrixLayoutDestroy(b);
  if (c) cublasLtMatrixLayoutDestroy(c);
}

cublasStatus_t lt_heuristic_algos(cublasLtHandle_t handle, const LtMatmulDescriptors& d, size_t workspace_bytes,
                                  std::vector<cublasLtMatmulAlgo_t>* algos, int max) {
  algos->clear();
  cublasLtMatmulPreference_t pref;
  cublasStatus_t st = cublasLtMatmulPreferenceCreate(&pref);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                            sizeof(workspace_bytes));
  std::vector<cublasLtMatmulHeuristicResult_t> res(static_cast<size_t>(max));
  int found = 0;
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulAlgoGetHeuristic(handle, d.desc, d.a, d.b, d.c, d.c, pref, max, res.data(), &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS) return st;
  if (found == 0) return CUBLAS_STATUS_NOT_SUPPORTED;
  for (int i = 0; i < found; ++i) algos->push_back(res[static_cast<size_t>(i)].algo);
  return CUBLAS_STATUS_SUCCESS;
}

struct Gemm::Plan : LtMatmulDescriptors {
  cublasLtMatmulAlgo_t algo{};
  bool use_gemv = false;  // the skinny kernel (gemv.cu) timed faster
};

Gemm::Gemm() = default;

Gemm::~Gemm() {
  plans_.clear();
  batched_plans_.clear();
  if (handle_) cublasLtDestroy(handle_);
}

Status Gemm::init(size_t workspace_bytes) {
  BATON_RETURN_IF_ERROR(load_cublaslt());
  if (cublasLtCreate(&handle_) != CUBLAS_STATUS_SUCCESS) return internal_error("cublasLtCreate failed");
  return workspace_.allocate(workspace_bytes);
}

int gemm_m_bucket(int m) {
  if (m <= 64) return m;
  int octave = 1;
  while (octave * 2 <= m) octave *= 2;  // octave <= m < 2 * octave
  int step = octave / 8;
  return (m + step - 1) / step * step;
}

struct Gemm::Choice {
  cublasLtMatmulAlgo_t algo{};
  bool use_gemv = false;
};

// Times each candidate (one warm-up, then kReps launches) and the skinny
// kernel where it applies; returns the fastest. Each timed launch starts with
// the weights out of L2, as in a serving step, which streams every layer's
// weights from HBM: the workspace (64 MiB, above an H100's or H200's 50 MB of
// L2) is overwritten before it. Timed back to back instead, a 50 MB weight
// stays in L2 between launches, and cuBLASLt's split-k kernels won there while
// streaming it from HBM at half the skinny kernel's rate (ncu in the step, H200:
// Llama-3.1-8B's qkv 26.3 us, 1.9 TB/s).
Gemm::Choice Gemm::time_candidates(Plan& p, const bf16* x, const bf16* w, void* y, int m, int n, int k, bool y_f32,
                                   cudaStream_t stream) {
  std::vector<cublasLtMatmulAlgo_t> algos;
  const cublasStatus_t st = lt_heuristic_algos(handle_, p, workspace_.bytes(), &algos);
  BATON_CHECK(st == CUBLAS_STATUS_SUCCESS, "cuBLASLt found no algorithm for {}x{}x{} (status {})", m, n, k,
              static_cast<int>(st));
  const int found = static_cast<int>(algos.size());
  Choice choice;
  choice.algo = algos[0];
  cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
  BATON_CUDA_CHECK(cudaStreamIsCapturing(stream, &cap));
  if (cap != cudaStreamCaptureStatusNone) {
    choice.use_gemv = gemv_supports(m, k);  // no timing inside a capture: skinny shapes default to the kernel
    return choice;
  }
  if (found == 1 && !gemv_supports(m, k)) return choice;
  cudaEvent_t e0, e1;
  BATON_CUDA_CHECK(cudaEventCreate(&e0));
  BATON_CUDA_CHECK(cudaEventCreate(&e1));
  constexpr int kReps = 5;
  auto time_ms = [&](auto&& launch) {  // -1: a launch failed
    if (!launch()) return -1.0f;
    float total = 0.0f;
    for (int r = 0; r < kReps; ++r) {
      BATON_CUDA_CHECK(cudaMemsetAsync(workspace_.get(), r, workspace_.bytes(), stream));  // evicts w from L2
      BATON_CUDA_CHECK(cudaEventRecord(e0, stream));
      const bool ok = launch();
      BATON_CUDA_CHECK(cudaEventRecord(e1, stream));
      BATON_CUDA_CHECK(cudaEventSynchronize(e1));
      if (!ok) return -1.0f;
      float ms = 0.0f;
      BATON_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
      total += ms;
    }
    return total;
  };
  float alpha = 1.0f, beta = 0.0f;
  float best = 1e30f;
  for (int i = 0; i < found; ++i) {
    float ms = time_ms([&] {
      return cublasLtMatmul(handle_, p.desc, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c,
                            &algos[static_cast<size_t>(i)], workspace_.get(), workspace_.bytes(),
                            stream) == CUBLAS_STATUS_SUCCESS;
    });
    if (ms >= 0 && ms < best) {
      best = ms;
      choice.algo = algos[static_cast<size_t>(i)];
    }
  }
  float gemv_ms = -1.0f;
  if (gemv_supports(m, k)) {  // the skinny kernel as one more candidate
    gemv_ms = time_ms([&] {
      launch_gemv(x, w, y, m, n, k, y_f32, stream);
      return true;
    });
    if (gemv_ms < best) choice.use_gemv = true;
  }
  BATON_LOG_DEBUG("gemm {}x{}x{}: {} cuBLASLt candidates, best {:.1f} us; skinny kernel {:.1f} us: {}", m, n, k, found,
                  1e3f * best / kReps, 1e3f * gemv_ms / kReps, choice.use_gemv ? "skinny" : "cuBLASLt");
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return choice;
}

// Column-major view: C^T[N, M] = W[N, K] (row-major = col-major [K, N], op T) . x^T.
Gemm::Plan* Gemm::plan(const bf16* x, const bf16* w, void* y, int m, int n, int k, bool y_f32, cudaStream_t stream) {
  Key key{m, n, k, y_f32};
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second.get();
  auto p = std::make_unique<Plan>();
  BATON_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  BATON_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  BATON_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  BATON_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, k, n, k));
  BATON_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, k, m, k));
  BATON_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, y_f32 ? CUDA_R_32F : CUDA_R_16BF, n, m, n));
  Key bucket{gemm_m_bucket(m), n, k, y_f32};
  auto chosen = choices_.find(bucket);
  bool reused = false;
  if (chosen != choices_.end()) {
    const Choice& c = *chosen->second;
    if (c.use_gemv) {
      reused = gemv_supports(m, k);
    } else {
      cublasLtMatmulHeuristicResult_t check{};
      reused = cublasLtMatmulAlgoCheck(handle_, p->desc, p->a, p->b, p->c, p->c, &c.algo, &check) ==
                   CUBLAS_STATUS_SUCCESS &&
               check.workspaceSize <= workspace_.bytes();
    }
    if (reused) {
      p->algo = c.algo;
      p->use_gemv = c.use_gemv;
    }
  }
  if (!reused) {
    Choice c = time_candidates(*p, x, w, y, m, n, k, y_f32, stream);
    p->algo = c.algo;
    p->use_gemv = c.use_gemv;
    if (chosen == choices_.end()) choices_.emplace(bucket, std::make_unique<Choice>(c));
  }
  Plan* raw = p.get();
  plans_.emplace(key, std::move(p));
  return raw;
}

void Gemm::run(const bf16* x, const bf16* w, void* y, int m, int n, int k, bool y_f32, cudaStream_t stream) {
  if (m == 0) return;
  if (row_invariant_) {
    launch_gemm_row_invariant(x, w, y, m, n, k, y_f32, stream);
    return;
  }
  Plan* p = plan(x, w, y, m, n, k, y_f32, stream);
  if (p->use_gemv) {
    launch_gemv(x, w, y, m, n, k, y_f32, stream);
    return;
  }
  float alpha = 1.0f, beta = 0.0f;
  BATON_CUBLAS_CHECK(cublasLtMatmul(handle_, p->desc, &alpha, w, p->a, x, p->b, &beta, y, p->c, y, p->c, &p->algo,
                                    workspace_.get(), workspace_.bytes(), stream));
}

namespace {

// The largest power of two (<= 256 bytes) dividing a bf16 pointer and its strides.
uint32_t alignment_bytes(const void* p, int64_t ld, int64_t batch_stride) {
  const uint64_t v = reinterpret_cast<uintptr_t>(p) | static_cast<uint64_t>(ld * 2) |
                     static_cast<uint64_t>(batch_stride * 2) | 256u;
  return static_cast<uint32_t>(v & (~v + 1));
}

void set_batch(cublasLtMatrixLayout_t l, int batch, int64_t stride) {
  int32_t b = batch;
  BATON_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &b, sizeof(b)));
  BATON_CUBLAS_CHECK(
      cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
}

}  // namespace

void Gemm::run_batched(const BatchedGemm& g, cudaStream_t stream) {
  if (g.m == 0 || g.batch == 0) return;
  const uint32_t align_w = alignment_bytes(g.w, g.ldw, g.w_batch), align_x = alignment_bytes(g.x, g.ldx, g.x_batch),
                 align_y = alignment_bytes(g.y, g.ldy, g.y_batch);
  BatchedKey key{g.m,       g.n,   g.k,       g.batch, g.ldx,   g.x_batch, g.ldw,
                 g.w_batch, g.ldy, g.y_batch, align_w, align_x, align_y};
  auto it = batched_plans_.find(key);
  if (it == batched_plans_.end()) {
    auto p = std::make_unique<Plan>();
    BATON_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    BATON_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    BATON_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    // Column-major view as run(): C^T[n, m] = W[n, k] (col-major [k, n], op T) . x^T.
    BATON_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_16BF, g.k, g.n, g.ldw));
    BATON_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_16BF, g.k, g.m, g.ldx));
    BATON_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_16BF, g.n, g.m, g.ldy));
    set_batch(p->a, g.batch, g.w_batch);
    set_batch(p->b, g.batch, g.x_batch);
    set_batch(p->c, g.batch, g.y_batch);
    cublasLtMatmulPreference_t pref;
    BATON_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = workspace_.bytes();
    BATON_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligns[] = {
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_w},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_x},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_y},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_y}};
    for (const auto& [attr, bytes] : aligns)
      BATON_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, attr, &bytes, sizeof(bytes)));
    cublasLtMatmulHeuristicResult_t res{};
    int found = 0;
    BATON_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle_, p->desc, p->a, p->b, p->c, p->c, pref, 1, &res, &found));
    cublasLtMatmulPreferenceDestroy(pref);
    BATON_CHECK(found > 0, "cuBLASLt found no algorithm for {} batched {}x{}x{}", g.batch, g.m, g.n, g.k);
    p->algo = res.algo;
    it = batched_plans_.emplace(key, std::move(p)).first;
  }
  const Plan& p = *it->second;
  float alpha = 1.0f, beta = 0.0f;
  BATON_CUBLAS_CHECK(cublasLtMatmul(handle_, p.desc, &alpha, g.w, p.a, g.x, p.b, &beta, g.y, p.c, g.y, p.c, &p.algo,
                                    workspace_.get(), workspace_.bytes(), stream));
}

}  // namespace baton::cuda
