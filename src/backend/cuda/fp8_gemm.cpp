#include "backend/cuda/fp8_gemm.h"

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/check.h"
#include "common/log.h"

namespace baton::cuda {

struct Fp8Gemm::Plan : LtMatmulDescriptors {
  cublasLtMatmulAlgo_t algo{};
  std::vector<cublasLtMatmulAlgo_t> candidates;  // the heuristic's, best first
};

Fp8Gemm::Fp8Gemm() = default;

Fp8Gemm::~Fp8Gemm() {
  plans_.clear();
  if (handle_) cublasLtDestroy(handle_);
}

const char* Fp8Gemm::form_name(Form f) {
  return f == Form::kWeightA ? "A = weight (BLK128x128), B = activations (VEC128)"
                             : "A = activations (VEC128), B = weight (BLK128x128), D row-major";
}

Status Fp8Gemm::init(int max_m, int max_k, int64_t max_fallback_elems, int64_t max_weight_elems, Gemm* bf16_gemm) {
  if (cublasLtCreate(&handle_) != CUBLAS_STATUS_SUCCESS) return internal_error("cublasLtCreate failed");
  max_m_ = max_m;
  max_k_ = max_k;
  bf16_gemm_ = bf16_gemm;
  const size_t groups = (static_cast<size_t>(max_k) + kFp8GroupCols - 1) / kFp8GroupCols;
  BATON_RETURN_IF_ERROR(workspace_.allocate(size_t{32} << 20));
  BATON_RETURN_IF_ERROR(act_bits_.allocate(static_cast<size_t>(max_m) * max_k));
  BATON_RETURN_IF_ERROR(act_scales_.allocate(static_cast<size_t>(max_m) * groups * sizeof(float)));
  BATON_RETURN_IF_ERROR(probe_w8a8());
  // Without cuBLASLt's block-scaled FP8 every weight past the GEMV's rows runs dequantised.
  max_fallback_elems_ = w8a8_ ? max_fallback_elems : std::max(max_fallback_elems, max_weight_elems);
  if (max_fallback_elems_ > 0) BATON_RETURN_IF_ERROR(fallback_.allocate(static_cast<size_t>(max_fallback_elems_) * 2));
  return Status::ok();
}

// One small W8A8 product in each form until cuBLASLt runs one.
Status Fp8Gemm::probe_w8a8() {
  constexpr int m = 16, n = 128, k = 128;
  DeviceBuffer xb, wb, xs, ws, y;
  BATON_RETURN_IF_ERROR(xb.allocate(m * k));
  BATON_RETURN_IF_ERROR(wb.allocate(n * k));
  BATON_RETURN_IF_ERROR(xs.allocate(m * 4 * sizeof(float)));
  BATON_RETURN_IF_ERROR(ws.allocate(fp8_scale_ld(k) * sizeof(float)));
  BATON_RETURN_IF_ERROR(y.allocate(m * n * 2));
  std::string refusals;
  for (Form f : {Form::kWeightA, Form::kActivationA}) {
    form_ = f;
    cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
    std::unique_ptr<Plan> p = make_plan(m, n, k, ws.get(), xs.get(), &st);
    if (p != nullptr) st = matmul(*p, wb.get(), xb.get(), y.get(), nullptr);
    if (p != nullptr && st == CUBLAS_STATUS_SUCCESS && cudaDeviceSynchronize() == cudaSuccess) {
      w8a8_ = true;
      BATON_LOG_INFO("FP8 GEMM: cuBLASLt block-scaled W8A8, {}", form_name(f));
      return Status::ok();
    }
    refusals += fmt::format("; {}: cuBLAS status {}", form_name(f), static_cast<int>(st));
  }
  w8a8_ = false;
  BATON_LOG_WARN("FP8 GEMM: cuBLASLt runs no block-scaled FP8 form here{}: FP8 linears past 8 rows run dequantised",
                 refusals);
  return Status::ok();
}

bool Fp8Gemm::w8a8_supports(const Fp8Weight& w, int n, int k) {
  return w.scale_rows == kFp8GroupCols && k % kFp8GroupCols == 0 && n % 16 == 0 && w.scale_ld == fp8_scale_ld(k);
}

// The TN form FP8 needs. kWeightA, column-major as Gemm::run: D^T[n, m] =
// W[n, k] (col-major [k, n], op T) . x^T (col-major [k, m], op N).
// kActivationA: D[m, n] (row-major) = x (col-major [k, m], op T) . W^T
// (col-major [k, n], op N). The scale pointers are set before the heuristic
// (cuBLASLt refuses block scaling without them); null plan: no algorithm.
std::unique_ptr<Fp8Gemm::Plan> Fp8Gemm::make_plan(int m, int n, int k, const void* w_scales, const void* x_scales,
                                                  cublasStatus_t* status) {
  auto p = std::make_unique<Plan>();
  BATON_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  BATON_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  BATON_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  const bool weight_a = form_ == Form::kWeightA;
  const int32_t blk = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F, vec = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
  const int32_t mode_a = weight_a ? blk : vec, mode_b = weight_a ? vec : blk;
  BATON_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode_a, sizeof(mode_a)));
  BATON_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode_b, sizeof(mode_b)));
  set_scales(*p, w_scales, x_scales);
  BATON_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_8F_E4M3, k, weight_a ? n : m, k));
  BATON_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_8F_E4M3, k, weight_a ? m : n, k));
  if (weight_a) {
    BATON_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_16BF, n, m, n));
  } else {
    BATON_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_16BF, m, n, n));
    const cublasLtOrder_t row = CUBLASLT_ORDER_ROW;
    BATON_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(p->c, CUBLASLT_MATRIX_LAYOUT_ORDER, &row, sizeof(row)));
  }
  *status = lt_heuristic_algos(handle_, *p, workspace_.bytes(), &p->candidates);
  if (*status != CUBLAS_STATUS_SUCCESS) return nullptr;
  p->algo = p->candidates[0];
  return p;
}

void Fp8Gemm::set_scales(Plan& p, const void* w_scales, const void* x_scales) {
  const bool weight_a = form_ == Form::kWeightA;
  const void* a_scale = weight_a ? w_scales : x_scales;
  const void* b_scale = weight_a ? x_scales : w_scales;
  BATON_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &a_scale, sizeof(a_scale)));
  BATON_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &b_scale, sizeof(b_scale)));
}

cublasStatus_t Fp8Gemm::matmul(const Plan& p, const void* w_bits, const void* x_bits, void* y, cudaStream_t stream,
                               const cublasLtMatmulAlgo_t* algo) {
  const bool weight_a = form_ == Form::kWeightA;
  const float alpha = 1.0f, beta = 0.0f;
  return cublasLtMatmul(handle_, p.desc, &alpha, weight_a ? w_bits : x_bits, p.a, weight_a ? x_bits : w_bits, p.b,
                        &beta, y, p.c, y, p.c, algo ? algo : &p.algo, workspace_.get(), workspace_.bytes(), stream);
}

// As Gemm: the heuristic's candidates timed on these very buffers (one
// warm-up, then 3 launches each), the fastest kept; inside a graph capture
// the heuristic's first.
void Fp8Gemm::choose_fastest(Plan& p, const void* w_bits, const void* x_bits, void* y, cudaStream_t stream) {
  cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
  BATON_CUDA_CHECK(cudaStreamIsCapturing(stream, &cap));
  if (cap != cudaStreamCaptureStatusNone || p.candidates.size() < 2) return;
  cudaEvent_t e0, e1;
  BATON_CUDA_CHECK(cudaEventCreate(&e0));
  BATON_CUDA_CHECK(cudaEventCreate(&e1));
  float best = 1e30f;
  for (const cublasLtMatmulAlgo_t& algo : p.candidates) {
    if (matmul(p, w_bits, x_bits, y, stream, &algo) != CUBLAS_STATUS_SUCCESS) continue;
    BATON_CUDA_CHECK(cudaEventRecord(e0, stream));
    bool ok = true;
    for (int r = 0; r < 3; ++r) ok = ok && matmul(p, w_bits, x_bits, y, stream, &algo) == CUBLAS_STATUS_SUCCESS;
    BATON_CUDA_CHECK(cudaEventRecord(e1, stream));
    BATON_CUDA_CHECK(cudaEventSynchronize(e1));
    float ms = 0.0f;
    BATON_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
    if (ok && ms < best) {
      best = ms;
      p.algo = algo;
    }
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
}

void Fp8Gemm::matmul_quantized(const Fp8Weight& w, bf16* y, int m, int n, int k, cudaStream_t stream) {
  const uint8_t* q = act_bits_.as<uint8_t>();
  const float* s = act_scales_.as<float>();
  Key key{m, n, k};
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
    std::unique_ptr<Plan> p = make_plan(m, n, k, w.scales, s, &st);
    BATON_CHECK(p != nullptr, "cuBLASLt has no FP8 block-scaled algorithm for m {} n {} k {} (status {})", m, n, k,
                static_cast<int>(st));
    choose_fastest(*p, w.bits, q, y, stream);
    it = plans_.emplace(key, std::move(p)).first;
  } else {
    set_scales(*it->second, w.scales, s);  // plans are per shape, shared by the weights of that shape
  }
  const cublasStatus_t st = matmul(*it->second, w.bits, q, y, stream);
  BATON_CHECK(st == CUBLAS_STATUS_SUCCESS, "cuBLASLt FP8 matmul m {} n {} k {}: status {}", m, n, k,
              static_cast<int>(st));
}

void Fp8Gemm::run_w8a8(const bf16* x, const Fp8Weight& w, bf16* y, int m, int n, int k, cudaStream_t stream) {
  const int m4 = m / 4 * 4;  // cuBLASLt's share; the rest through the GEMV
  if (m4 > 0) {
    launch_fp8_quantize_groups(x, m4, k, act_bits_.as<uint8_t>(), act_scales_.as<float>(), stream);
    matmul_quantized(w, y, m4, n, k, stream);
  }
  if (m4 < m)
    launch_fp8_gemv(x + static_cast<int64_t>(m4) * k, w, y + static_cast<int64_t>(m4) * n, m - m4, n, k, stream);
}

bool Fp8Gemm::takes_quantized(const Fp8Weight& w, int m, int n, int k) const {
  return m % 4 == 0 && m <= max_m_ && k <= max_k_ && path_of(w, m, n, k) == Path::kW8a8;
}

void Fp8Gemm::run_quantized(const Fp8Weight& w, bf16* y, int m, int n, int k, cudaStream_t stream) {
  BATON_CHECK(takes_quantized(w, m, n, k), "fp8 gemm: m {} n {} k {} does not take quantised activations", m, n, k);
  matmul_quantized(w, y, m, n, k, stream);
}

Fp8Gemm::Path Fp8Gemm::path_of(const Fp8Weight& w, int m, int n, int k) const {
  if (row_invariant_) return Path::kDequant;
  const bool w8a8 = w8a8_enabled_ && w8a8_ && w8a8_supports(w, n, k);
  if (fp8_gemv_supports(m, k) && (m <= kGemvMaxRowsBeforeW8a8 || !w8a8)) return Path::kGemv;
  return w8a8 ? Path::kW8a8 : Path::kDequant;
}

void Fp8Gemm::run(const bf16* x, const Fp8Weight& w, bf16* y, int m, int n, int k, cudaStream_t stream) {
  if (m == 0) return;
  BATON_CHECK(m <= max_m_ && k <= max_k_, "fp8 gemm: m {} k {} over the buffers' {} x {}", m, k, max_m_, max_k_);
  const Path path = path_of(w, m, n, k);
  if (path == Path::kGemv) {
    launch_fp8_gemv(x, w, y, m, n, k, stream);
    return;
  }
  if (path == Path::kW8a8) {
    run_w8a8(x, w, y, m, n, k, stream);
    return;
  }
  BATON_CHECK(static_cast<int64_t>(n) * k <= max_fallback_elems_,
              "fp8 gemm: a {} x {} weight takes the dequantising path but its scratch holds {} elements", n, k,
              max_fallback_elems_);
  Fp8DequantArgs d;
  d.bits = w.bits;
  d.scales = w.scales;
  d.out = fallback_.as<bf16>();
  d.rows = n;
  d.cols = k;
  d.block_rows = w.scale_rows;
  d.block_cols = kFp8GroupCols;
  d.scale_ld = w.scale_ld;
  launch_fp8_dequantize(d, stream);
  bf16_gemm_->run(x, fallback_.as<bf16>(), y, m, n, k, false, stream);
}

}  // namespace baton::cuda
