// A checkpoint's weights converted to fp32 for the CPU backend, with q/k/v
// and gate/up fused so each is one matmul, and every matrix packed for
// matmul_packed (cpu_ops.h). Under tensor parallelism each rank loads only
// its slice (model/tp_shard.h): the shapes below are then the rank's (its
// heads, its intermediate slice, its vocabulary rows).
#pragma once

#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "common/status.h"
#include "model/checkpoint.h"
#include "model/model_config.h"
#include "model/tp_shard.h"

namespace baton {

class ThreadPool;

// DeepSeek-V3's multi-head latent attention, kept for the absorbed form
// (the query is taken into latent space, attention runs on the cached
// latent, the result is taken out of it per head), as FlashMLA and vLLM's
// MLA decode do.
struct CpuMlaWeights {
  // Fused over the normed hidden state: q rows (q_a_proj [q_lora_rank], or
  // q_proj [heads * qk_head_dim] when q_lora_rank is null), then
  // kv_a_proj_with_mqa [kv_lora_rank + qk_rope_head_dim].
  PackedWeight qkv_a;
  std::vector<float> q_a_norm;     // [q_lora_rank]; empty when q_lora_rank is null
  PackedWeight q_b;                // [heads * qk_head_dim, q_lora_rank]; empty when null
  std::vector<float> kv_a_norm;    // [kv_lora_rank]
  std::vector<PackedWeight> uk_t;  // [heads] x [kv_lora_rank, qk_nope_head_dim]: kv_b_proj's K rows, transposed
  std::vector<PackedWeight> uv;    // [heads] x [v_head_dim, kv_lora_rank]: kv_b_proj's V rows
};

struct CpuLayerWeights {
  std::vector<float> input_norm;  // [hidden]
  CpuMlaWeights mla;              // deepseek_v3 (then qkv, q/k norms and biases are empty)
  PackedWeight qkv;               // [q_size + 2 * kv_size, hidden]: q rows, k rows, v rows
  std::vector<float> qkv_bias;    // [q_size + 2 * kv_size], empty without bias
  std::vector<float> q_norm;      // [head_dim], empty without qk norm
  std::vector<float> k_norm;      // [head_dim]
  PackedWeight o_proj;            // [hidden, q_size]
  std::vector<float> o_bias;      // [hidden], empty without bias (and on every rank but 0)
  std::vector<float> post_norm;   // [hidden]
  // Dense MLP (empty in MoE layers).
  PackedWeight gate_up;  // [2 * intermediate, hidden]: gate rows then up rows
  PackedWeight down;     // [hidden, intermediate]
  // Sparse MoE block (empty in dense layers).
  bool is_moe = false;
  PackedWeight router;  // [num_experts, hidden]
  // The shard's routed experts (all, or under expert parallelism its
  // num_local_experts from expert_begin): local index x is expert expert_begin + x.
  std::vector<PackedWeight> expert_gate_up;  // [local experts] x [2 * moe_intermediate, hidden]
  std::vector<PackedWeight> expert_down;     // [local experts] x [hidden, moe_intermediate]
  std::vector<float> expert_bias;            // deepseek_v3: e_score_correction_bias [num_experts]
  PackedWeight shared_gate_up;               // deepseek_v3: [2 * shared_inter, hidden]; empty without
  PackedWeight shared_down;                  // deepseek_v3: [hidden, shared_inter]
};

struct CpuWeights {
  std::vector<float> embed;       // [vocab rows, hidden], row-major; empty when tied (rows come from lm_head)
  std::vector<float> final_norm;  // [hidden]
  PackedWeight lm_head;           // [vocab rows, hidden]; embed_tokens itself when tied
  std::vector<CpuLayerWeights> layers;

  size_t num_bytes() const;
  size_t routed_expert_bytes() const;  // the routed experts' part of num_bytes()

  // Reads and converts this shard's part of every tensor the config calls
  // for; a missing tensor or one of the wrong shape is an error naming it.
  static Result<CpuWeights> load(const Checkpoint& ckpt, const TpShard& shard, ThreadPool* pool);
};

}  // namespace baton
