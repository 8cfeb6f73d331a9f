// Linears with FP8 (e4m3) weights: y[m, n] = x[m, k] . W[n, k]^T, bf16 x and y.
//  - m <= 3, or m <= 8 where W8A8 does not take the weight (decode's small
//    batches): the W8A16 GEMV (fp8_kernels.h), which streams the e4m3 bytes
//    once with bf16 activations (from 4 rows its conversions cost more than
//    cuBLASLt's W8A8: on an H200, Llama-3.1-8B's batch-8 step took 9.5 ms
//    through the GEMV and 5.0 ms through W8A8; batch 4 4.82 and 4.70 ms);
//  - weights in 128x128 blocks with k a multiple of 128: W8A8 through
//    cuBLASLt, the activations quantised per token group of 128 columns on the
//    fly (VEC128_32F scales for x, BLK128x128_32F for W, fp32 accumulation);
//    a remainder of m mod 4 rows (cuBLASLt wants the activation scales'
//    token count a multiple of 4) goes through the GEMV; which operand is
//    cuBLASLt's A is probed once at init (the first form it runs);
//  - anything else (per-row scales, small or unaligned k) and batch-invariant
//    mode: the weight dequantised into a bf16 scratch, then the bf16 GEMM.
// Plans are cached per shape (the fastest of cuBLASLt's candidates, timed at
// the first call outside a graph capture) and every buffer is preallocated by
// init(), so calls can be captured in a CUDA graph.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <tuple>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/fp8_kernels.h"
#include "backend/cuda/gemm.h"
#include "common/status.h"

namespace baton::cuda {

class Fp8Gemm {
 public:
  Fp8Gemm();
  ~Fp8Gemm();
  Fp8Gemm(const Fp8Gemm&) = delete;
  Fp8Gemm& operator=(const Fp8Gemm&) = delete;

  // Buffers for up to max_m rows of k <= max_k, and the bf16 scratch for a
  // dequantised weight of max_fallback_elems (the largest weight that takes
  // the fallback; 0: none), or of max_weight_elems (the largest of all) when
  // cuBLASLt runs no block-scaled FP8 here (probed once, logged).
  // `bf16_gemm` runs the fallback (it must outlive this).
  Status init(int max_m, int max_k, int64_t max_fallback_elems, int64_t max_weight_elems, Gemm* bf16_gemm);
  void set_row_invariant(bool on) { row_invariant_ = on; }
  // false: no activation quantisation (W8A16 everywhere: the GEMV, else the
  // dequantising path), the CPU reference's numerics. init() must then have
  // been given the largest weight as the fallback's.
  void set_w8a8(bool on) { w8a8_enabled_ = on; }

  // Whether the W8A8 cuBLASLt path takes a weight of this layout and k.
  static bool w8a8_supports(const Fp8Weight& w, int n, int k);
  // Whether cuBLASLt ran the probe's block-scaled product (then W8A8 is used), and in which form.
  bool has_w8a8() const { return w8a8_; }
  const char* w8a8_form() const { return w8a8_ ? form_name(form_) : "none"; }

  // The rows up to which the GEMV runs although W8A8 takes the weight.
  static constexpr int kGemvMaxRowsBeforeW8a8 = 3;
  // Which path run() takes for this weight and shape (W8A8's m mod 4
  // remainder rows go through the GEMV).
  enum class Path { kGemv, kW8a8, kDequant };
  Path path_of(const Fp8Weight& w, int m, int n, int k) const;

  // y = x . w^T. Aborts on a cuBLAS failure or a fallback weight larger than
  // init's (shapes are validated at load).
  void run(const bf16* x, const Fp8Weight& w, bf16* y, int m, int n, int k, cudaStream_t stream);

  // Activations quantised ahead by the kernel that produces them (fp8_kernels.h's
  // launch_add_rmsnorm_fp8, launch_silu_mul_fp8): [m, k] e4m3 and [k / 128, m] scales.
  struct QuantizedActs {
    uint8_t* bits = nullptr;
    float* scales = nullptr;
  };
  // Whether run() would take all m rows of this weight and shape through
  // W8A8 (m a multiple of 4), so that run_quantized may replace it.
  bool takes_quantized(const Fp8Weight& w, int m, int n, int k) const;
  // The buffers to quantise into; run() and run_quantized() overwrite them,
  // so nothing FP8 may run between the producer and its run_quantized.
  QuantizedActs quantized_acts() const { return {act_bits_.as<uint8_t>(), act_scales_.as<float>()}; }
  // y = x . w^T, x being what the producer quantised into quantized_acts().
  void run_quantized(const Fp8Weight& w, bf16* y, int m, int n, int k, cudaStream_t stream);

 private:
  struct Plan;
  using Key = std::tuple<int, int, int>;  // (m, n, k)
  // Which operand is cuBLASLt's A (the transposed one of the TN form).
  enum class Form { kWeightA, kActivationA };
  static const char* form_name(Form f);
  Status probe_w8a8();
  std::unique_ptr<Plan> make_plan(int m, int n, int k, const void* w_scales, const void* x_scales,
                                  cublasStatus_t* status);
  void set_scales(Plan& p, const void* w_scales, const void* x_scales);
  cublasStatus_t matmul(const Plan& p, const void* w_bits, const void* x_bits, void* y, cudaStream_t stream,
                        const cublasLtMatmulAlgo_t* algo = nullptr);
  void choose_fastest(Plan& p, const void* w_bits, const void* x_bits, void* y, cudaStream_t stream);
  void run_w8a8(const bf16* x, const Fp8Weight& w, bf16* y, int m, int n, int k, cudaStream_t stream);
  // cuBLASLt's product over the activations in act_bits_ / act_scales_ (m a multiple of 4).
  void matmul_quantized(const Fp8Weight& w, bf16* y, int m, int n, int k, cudaStream_t stream);

  bool row_invariant_ = false;
  bool w8a8_ = false;  // cuBLASLt ran the probe
  bool w8a8_enabled_ = true;
  Form form_ = Form::kWeightA;
  Gemm* bf16_gemm_ = nullptr;
  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer workspace_, act_bits_, act_scales_, fallback_;
  int max_m_ = 0, max_k_ = 0;
  int64_t max_fallback_elems_ = 0;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace baton::cuda
