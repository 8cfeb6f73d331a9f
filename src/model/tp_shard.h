// Tensor parallelism's sharding rules, in one place: which part of each
// weight rank `rank` of `world_size` holds. Backends load their slice by
// these rules and run the same forward pass over the smaller shapes, with an
// all-reduce after each row-parallel projection and an all-gather of the
// vocabulary-parallel logits (docs/parallelism.md).
//
//   q/k/v, gate/up, expert gate/up    column-parallel: rows of this rank's heads / intermediate slice
//   o_proj, down, expert down         row-parallel: the same slice of columns, then all-reduce (sum)
//   embed_tokens, lm_head             vocabulary-parallel: rows [vocab_begin, vocab_begin + vocab_count)
//   KV heads                          split when world_size <= num_kv_heads; replicated (each rank
//                                     holds the one its query heads use) when world_size is a multiple
//   MLA (deepseek_v3)                 q_b / q_proj, kv_b_proj and o_proj split by head; the latent
//                                     (q_a, kv_a, their norms, the cached row) replicated
//   router, norms, biases of o/down   replicated (o_proj's bias is added once, by rank 0)
//   routed experts, expert parallel   (--enable-expert-parallel) rank r holds experts
//                                     [r*E/N, (r+1)*E/N) whole; the MoE block's all-reduce combines them
#pragma once

#include <cstdint>

#include "common/status.h"
#include "model/model_config.h"

namespace baton {

struct TpShard {
  int rank = 0;
  int world_size = 1;
  // Attention: query heads [head_begin, head_begin + num_heads), KV heads
  // [kv_head_begin, kv_head_begin + num_kv_heads) of the model's.
  int head_begin = 0;
  int num_heads = 0;
  int kv_head_begin = 0;
  int num_kv_heads = 0;
  int kv_head_replicas = 1;  // ranks holding a copy of each KV head (1: split, not replicated)
                             // (MLA: num_kv_heads 1, the latent row, held by every rank)
  // Dense MLP and each routed expert's intermediate slice (the whole expert
  // under expert parallelism).
  int intermediate_begin = 0;
  int intermediate_size = 0;
  int moe_intermediate_begin = 0;
  int moe_intermediate_size = 0;
  // DeepSeek's shared experts (one MLP of n_shared_experts * moe_intermediate_size
  // rows): always tensor-parallel, this rank's slice of those rows.
  int shared_intermediate_begin = 0;
  int shared_intermediate_size = 0;
  // Routed experts this rank holds, [expert_begin, expert_begin + num_local_experts)
  // of the model's num_experts: all of them unless expert_parallel.
  bool expert_parallel = false;
  int expert_begin = 0;
  int num_local_experts = 0;
  // Vocabulary: every rank holds vocab_per_rank rows of a vocabulary padded to
  // world_size * vocab_per_rank; rows at or past the model's vocab_size are padding.
  int64_t vocab_begin = 0;
  int64_t vocab_per_rank = 0;

  // The rules for `rank`; an error naming the heads (or sizes, or experts)
  // that cannot be split across world_size ranks. expert_parallel
  // (--enable-expert-parallel) spreads each MoE layer's routed experts over
  // the ranks instead of slicing every one; a model without experts ignores it.
  static Result<TpShard> make(const ModelConfig& config, int rank, int world_size, bool expert_parallel = false);

  // Whether routed expert `e` (of the model's) lives on this rank.
  bool holds_expert(int e) const { return e >= expert_begin && e < expert_begin + num_local_experts; }

  // The model as this rank computes it: the config with num_heads,
  // num_kv_heads, intermediate_size and moe_intermediate_size of the slice
  // (vocab_size, hidden_size and head_dim unchanged).
  ModelConfig rank_config(const ModelConfig& config) const;

  // Real (non-padding) vocabulary rows of this rank.
  int64_t vocab_count(const ModelConfig& config) const;
};

// Whether `config` can run at tensor parallel size `world_size` (with its
// experts spread when expert_parallel): OK, or the
// refusal TpShard::make gives (same message).
Status check_tensor_parallel(const ModelConfig& config, int world_size, bool expert_parallel = false);

}  // namespace baton
