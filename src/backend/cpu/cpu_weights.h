// A checkpoint's weights converted to fp32 for the CPU backend, with q/k/v
// and gate/up fused so each is one matmul, and every matrix packed for
// matmul_packed (cpu_ops.h).
#pragma once

#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "common/status.h"
#include "model/checkpoint.h"
#include "model/model_config.h"

namespace baton {

class ThreadPool;

struct CpuLayerWeights {
  std::vector<float> input_norm;   // [hidden]
  PackedWeight qkv;                // [q_size + 2 * kv_size, hidden]: q rows, k rows, v rows
  std::vector<float> qkv_bias;     // [q_size + 2 * kv_size], empty without bias
  std::vector<float> q_norm;       // [head_dim], empty without qk norm
  std::vector<float> k_norm;       // [head_dim]
  PackedWeight o_proj;             // [hidden, q_size]
  std::vector<float> o_bias;       // [hidden], empty without bias
  std::vector<float> post_norm;    // [hidden]
  // Dense MLP (empty in MoE layers).
  PackedWeight gate_up;            // [2 * intermediate, hidden]: gate rows then up rows
  PackedWeight down;               // [hidden, intermediate]
  // Sparse MoE block (empty in dense layers).
  bool is_moe = false;
  PackedWeight router;                       // [num_experts, hidden]
  std::vector<PackedWeight> expert_gate_up;  // [num_experts] x [2 * moe_intermediate, hidden]
  std::vector<PackedWeight> expert_down;     // [num_experts] x [hidden, moe_intermediate]
};

struct CpuWeights {
  std::vector<float> embed;        // [vocab, hidden], row-major; empty when tied (rows come from lm_head)
  std::vector<float> final_norm;   // [hidden]
  PackedWeight lm_head;            // [vocab, hidden]; embed_tokens itself when tied
  std::vector<CpuLayerWeights> layers;

  size_t num_bytes() const;

  // Reads and converts every tensor the config calls for; a missing tensor or
  // one of the wrong shape is an error naming it.
  static Result<CpuWeights> load(const Checkpoint& ckpt, ThreadPool* pool);
};

}  // namespace baton
