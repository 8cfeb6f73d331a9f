// CudaWeights' FP8 side (cuda_weights.h): the dense projections kept in
// e4m3 with their scales in the device layout of fp8_kernels.h, and the
// scales of the F8 tensors the bf16 arena takes dequantised.
#include <algorithm>
#include <climits>

#include <fmt/format.h>

#include "backend/cuda/cuda_weights.h"
#include "backend/cuda/fp8_gemm.h"

namespace baton::cuda {
namespace {

size_t align256(size_t bytes) { return (bytes + 255) & ~size_t{255}; }

// The random init's spread (uniform(-a, a), std 0.02) as an e4m3 scale: bits span +-448.
constexpr float kRandomScale = 0.02f * 1.7320508f / 448.0f;

}  // namespace

int64_t CudaWeights::Fp8Item::rows() const {
  int64_t n = 0;
  for (const auto& [name, r] : parts) n += r;
  return n;
}

bool CudaWeights::keeps_fp8(const ModelConfig& c, const TpShard& shard, const Checkpoint* ckpt) {
  if (!c.quantization || shard.world_size != 1 || c.is_mla()) return false;
  const Fp8Quantization& q = *c.quantization;
  if (q.scheme == Fp8Scheme::kBlock && q.block_cols % kFp8GroupCols != 0) return false;
  if (ckpt == nullptr) return true;
  // The checkpoint's: F8 as stored (not opened dequantised).
  Result<TensorView> probe = ckpt->tensor("model.layers.0.self_attn.q_proj.weight");
  return probe.is_ok() && probe->dtype == DType::kF8E4M3;
}

Status CudaWeights::plan_fp8(const ModelConfig& c) {
  const Fp8Quantization& q = *c.quantization;
  size_t off = 0;
  max_fp8_fallback_elems_ = 0;
  for (Fp8Item& it : fp8_items_) {
    // 128-row scale blocks when every part but the last starts a new block.
    bool aligned = q.scheme == Fp8Scheme::kTensor || q.block_rows == kFp8GroupCols;
    for (size_t i = 0; i + 1 < it.parts.size(); ++i) aligned = aligned && it.parts[i].second % kFp8GroupCols == 0;
    const int64_t n = it.rows();
    Fp8Weight& w = *it.dst;
    w.scale_rows = aligned ? kFp8GroupCols : 1;
    w.scale_ld = fp8_scale_ld(it.k);
    it.bits_at = off;
    off += align256(static_cast<size_t>(n * it.k));
    it.scales_at = off;
    off += align256(static_cast<size_t>((n + w.scale_rows - 1) / w.scale_rows) * w.scale_ld * sizeof(float));
    max_fp8_elems_ = std::max(max_fp8_elems_, n * it.k);
    if (!Fp8Gemm::w8a8_supports(w, static_cast<int>(n), static_cast<int>(it.k)))
      max_fp8_fallback_elems_ = std::max(max_fp8_fallback_elems_, n * it.k);
  }
  Status st = fp8_arena_.allocate(std::max<size_t>(off, 256));
  if (!st.is_ok())
    return resource_exhausted("the model's FP8 weights ({:.2f} GiB): {}", off / 1073741824.0, st.message());
  BATON_CUDA_RETURN(cudaMemset(fp8_arena_.get(), 0, fp8_arena_.bytes()));
  char* base = static_cast<char*>(fp8_arena_.get());
  for (Fp8Item& it : fp8_items_) {
    it.dst->bits = reinterpret_cast<const uint8_t*>(base + it.bits_at);
    it.dst->scales = reinterpret_cast<const float*>(base + it.scales_at);
  }
  return Status::ok();
}

Status CudaWeights::load_fp8(const Checkpoint& ckpt) {
  const Fp8Quantization& q = *ckpt.config().quantization;
  char* base = static_cast<char*>(fp8_arena_.get());
  for (const Fp8Item& it : fp8_items_) {
    const Fp8Weight& w = *it.dst;
    const int64_t n = it.rows(), groups = (it.k + kFp8GroupCols - 1) / kFp8GroupCols;
    std::vector<float> scales(static_cast<size_t>((n + w.scale_rows - 1) / w.scale_rows) * w.scale_ld, 0.0f);
    int64_t row0 = 0;
    for (const auto& [name, rows] : it.parts) {
      BATON_ASSIGN_OR_RETURN(TensorView tv, ckpt.tensor(name, {rows, it.k}));
      if (tv.dtype != DType::kF8E4M3) {
        return invalid_argument(
            "'{}' is {}: FP8 on the GPU needs every dense projection of the checkpoint stored as F8_E4M3", name,
            dtype_name(tv.dtype));
      }
      BATON_ASSIGN_OR_RETURN(TensorView sv, ckpt.tensor(q.scale_name(name)));
      const std::vector<float> s = sv.to_float();
      const bool per_tensor = q.scheme == Fp8Scheme::kTensor;
      const int64_t s_cols = per_tensor ? 1 : (it.k + q.block_cols - 1) / q.block_cols;
      BATON_CUDA_RETURN(cudaMemcpy(base + it.bits_at + row0 * it.k, tv.data, static_cast<size_t>(rows * it.k),
                                   cudaMemcpyHostToDevice));
      // Scale row sr covers weight rows [sr * scale_rows, ...): this part's from its first row.
      for (int64_t sr = (row0 + w.scale_rows - 1) / w.scale_rows; sr * w.scale_rows < row0 + rows; ++sr) {
        const int64_t local = sr * w.scale_rows - row0;
        for (int64_t g = 0; g < groups; ++g) {
          const size_t src = per_tensor ? 0
                                        : static_cast<size_t>((local / q.block_rows) * s_cols +
                                                              g * kFp8GroupCols / q.block_cols);
          scales[static_cast<size_t>(sr * w.scale_ld + g)] = s[src];
        }
      }
      row0 += rows;
    }
    BATON_CUDA_RETURN(
        cudaMemcpy(base + it.scales_at, scales.data(), scales.size() * sizeof(float), cudaMemcpyHostToDevice));
  }
  return Status::ok();
}

Status CudaWeights::random_fp8(uint64_t seed, cudaStream_t stream) {
  char* base = static_cast<char*>(fp8_arena_.get());
  uint64_t s = seed ^ 0xF8F8F8F8ull;
  for (const Fp8Item& it : fp8_items_) {
    const Fp8Weight& w = *it.dst;
    const int64_t n = it.rows();
    launch_fp8_fill_random(reinterpret_cast<uint8_t*>(base + it.bits_at), n * it.k, s++ * 0x9E3779B97F4A7C15ull,
                           stream);
    launch_fill_const_f32(reinterpret_cast<float*>(base + it.scales_at),
                          (n + w.scale_rows - 1) / w.scale_rows * w.scale_ld, kRandomScale, stream);
  }
  BATON_CUDA_RETURN(cudaStreamSynchronize(stream));
  return Status::ok();
}

Result<Fp8DequantArgs> CudaWeights::stage_fp8_scales(const Checkpoint& ckpt, const std::string& name) {
  if (!ckpt.config().quantization)
    return invalid_argument("'{}' is F8_E4M3 but the checkpoint has no quantization_config", name);
  const Fp8Quantization& q = *ckpt.config().quantization;
  BATON_ASSIGN_OR_RETURN(TensorView sv, ckpt.tensor(q.scale_name(name)));
  const std::vector<float> s = sv.to_float();
  if (fp8_scale_staging_.bytes() < s.size() * sizeof(float))
    BATON_RETURN_IF_ERROR(fp8_scale_staging_.allocate(s.size() * sizeof(float)));
  BATON_CUDA_RETURN(cudaMemcpy(fp8_scale_staging_.get(), s.data(), s.size() * sizeof(float), cudaMemcpyHostToDevice));
  Fp8DequantArgs a;
  a.scales = fp8_scale_staging_.as<float>();
  if (q.scheme == Fp8Scheme::kTensor) {
    a.block_rows = a.block_cols = INT_MAX;
    a.scale_ld = 0;
  } else {
    a.block_rows = q.block_rows;
    a.block_cols = q.block_cols;
    a.scale_ld = sv.shape.size() == 2 ? static_cast<int>(sv.shape[1]) : 1;
  }
  return a;
}

}  // namespace baton::cuda
