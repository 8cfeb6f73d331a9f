// CpuBackend's multi-head latent attention (DeepSeek-V3), in the absorbed
// form FlashMLA and vLLM's MLA decode use, for prefill and decode alike:
//
//   latent row  = [kv_a_layernorm(c_kv), rope(k_pe)]        (cached, one per token)
//   q_latent[h] = [W_UK[h]^T q_nope[h], rope(q_pe[h])]        (per head)
//   o_latent[h] = softmax(q_latent[h] . rows * scale) @ rows[:, :kv_lora_rank]
//   out[h]      = W_UV[h] o_latent[h], then o_proj
//
// which equals HF's expanded form (K-nope and V from kv_b_proj per token).
// Every step is per token with fixed arithmetic, so the results do not
// depend on batching or chunking.
#include <algorithm>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_ops.h"
#include "model/yarn.h"

namespace baton {

void CpuBackend::mla_attention(const StepInput& in, int layer) {
  const CpuMlaWeights& W = weights_.layers[layer].mla;
  const MlaConfig& m = config_.mla;
  const int64_t n = in.num_tokens();
  const int nh = config_.num_heads;
  const int64_t rank = m.kv_lora_rank, rope = m.qk_rope_head_dim, nope = m.qk_nope_head_dim;
  const int64_t qk = m.qk_head_dim(), vd = m.v_head_dim, latent = m.latent_dim();
  const int64_t qa = W.qkv_a.out - latent;  // q_lora_rank, or heads * qk_head_dim without q LoRA
  const float eps = static_cast<float>(config_.rms_norm_eps);

  qkv_.resize(n * W.qkv_a.out);
  matmul_packed(normed_.data(), n, W.qkv_a, nullptr, qkv_.data(), pool_.get());  // [n, qa + latent]
  latent_rows_.resize(n * latent);
  q_.resize(n * nh * qk);
  std::vector<float> q_in(n * qa);  // [n, qa]
  for (int64_t t = 0; t < n; ++t) {
    const float* row = qkv_.data() + t * W.qkv_a.out;
    std::copy(row, row + qa, q_in.data() + t * qa);
    std::copy(row + qa, row + qa + latent, latent_rows_.data() + t * latent);
  }
  if (W.q_b.empty()) {
    q_.swap(q_in);  // q_proj's output: [n, nh, qk]
  } else {
    rmsnorm(q_in.data(), W.q_a_norm.data(), n, qa, eps, q_in.data());
    matmul_packed(q_in.data(), n, W.q_b, nullptr, q_.data(), pool_.get());  // [n, nh * qk]
  }
  // The latent part of each row is normalised; its rope part is the shared key.
  for (int64_t t = 0; t < n; ++t) {
    float* row = latent_rows_.data() + t * latent;
    rmsnorm(row, W.kv_a_norm.data(), 1, rank, eps, row);
  }
  apply_rope_strided(latent_rows_.data() + rank, n, 1, latent, static_cast<int>(rope), m.rope_interleave,
                     cos_sin_.data());
  apply_rope_strided(q_.data() + nope, n, nh, qk, static_cast<int>(rope), m.rope_interleave, cos_sin_.data());
  write_latent(latent_rows_.data(), in.slot_mapping.data(), n, layout_, layer, kv_.get());

  // Queries in latent space: [n, nh, rank + rope].
  q_latent_.resize(n * nh * latent);
  head_in_.resize(n * std::max(nope, rank));
  head_out_.resize(n * std::max(rank, vd));
  for (int h = 0; h < nh; ++h) {
    for (int64_t t = 0; t < n; ++t) {
      const float* q = q_.data() + (t * nh + h) * qk;  // [nope + rope]
      std::copy(q, q + nope, head_in_.data() + t * nope);
      std::copy(q + nope, q + qk, q_latent_.data() + (t * nh + h) * latent + rank);
    }
    matmul_packed(head_in_.data(), n, W.uk_t[h], nullptr, head_out_.data(), pool_.get());  // [n, rank]
    for (int64_t t = 0; t < n; ++t)
      std::copy(head_out_.data() + t * rank, head_out_.data() + (t + 1) * rank,
                q_latent_.data() + (t * nh + h) * latent);
  }

  std::vector<float> o_latent(n * nh * rank);  // [n, nh, rank]
  paged_attention(paged_args(in, layer, q_latent_.data(), static_cast<float>(attention_softmax_scale(config_))),
                  o_latent.data(), pool_.get());

  // Out of latent space, per head: [n, nh * vd].
  attn_.resize(n * nh * vd);
  for (int h = 0; h < nh; ++h) {
    for (int64_t t = 0; t < n; ++t) {
      const float* o = o_latent.data() + (t * nh + h) * rank;
      std::copy(o, o + rank, head_in_.data() + t * rank);
    }
    matmul_packed(head_in_.data(), n, W.uv[h], nullptr, head_out_.data(), pool_.get());  // [n, vd]
    for (int64_t t = 0; t < n; ++t)
      std::copy(head_out_.data() + t * vd, head_out_.data() + (t + 1) * vd, attn_.data() + (t * nh + h) * vd);
  }
  const CpuLayerWeights& L = weights_.layers[layer];
  matmul_packed(attn_.data(), n, L.o_proj, nullptr, proj_.data(), pool_.get());  // [n, h]
}

}  // namespace baton
