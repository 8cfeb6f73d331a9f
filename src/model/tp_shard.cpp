#include "model/tp_shard.h"

#include <algorithm>

namespace baton {
namespace {

bool has_dense_layer(const ModelConfig& c) {
  for (int layer = 0; layer < c.num_layers; ++layer)
    if (!c.is_moe_layer(layer)) return true;
  return false;
}

// The refusal, if any, of the MoE block across `n` ranks: each expert sliced
// (tensor parallel), or the experts spread whole (expert parallel) with the
// shared experts still sliced.
Status check_experts(const ModelConfig& c, int n, bool expert_parallel) {
  const char* arch = arch_name(c.arch);
  if (!expert_parallel) {
    if (c.moe_intermediate_size % n != 0)
      return invalid_argument("--tensor-parallel-size {} cannot split {}'s moe_intermediate_size {} evenly", n, arch,
                              c.moe_intermediate_size);
    return Status::ok();
  }
  if (c.num_experts % n != 0)
    return invalid_argument(
        "--enable-expert-parallel at --tensor-parallel-size {} cannot spread {}'s {} experts evenly over {} ranks "
        "({} % {} = {}): use a size that divides the expert count",
        n, arch, c.num_experts, n, c.num_experts, n, c.num_experts % n);
  const int64_t shared = static_cast<int64_t>(c.deepseek_moe.n_shared_experts) * c.moe_intermediate_size;
  if (shared % n != 0)
    return invalid_argument("--tensor-parallel-size {} cannot split {}'s shared experts ({} rows) evenly", n, arch,
                            shared);
  return Status::ok();
}

// The refusal, if any, of splitting `c` across `n` ranks.
Status check_layout(const ModelConfig& c, int n, bool expert_parallel) {
  const char* arch = arch_name(c.arch);
  if (c.num_heads <= 0 || c.num_kv_heads <= 0)
    return invalid_argument("{} has {} attention heads and {} KV heads: nothing to shard", arch, c.num_heads,
                            c.num_kv_heads);
  if (c.num_heads % n != 0)
    return invalid_argument(
        "--tensor-parallel-size {} cannot shard {}'s {} attention heads: the ranks must split them evenly "
        "({} % {} = {})",
        n, arch, c.num_heads, c.num_heads, n, c.num_heads % n);
  // MLA caches one latent row that every head reads: replicated, whatever n.
  if (!c.is_mla() && c.num_kv_heads % n != 0 && n % c.num_kv_heads != 0)
    return invalid_argument(
        "--tensor-parallel-size {} cannot shard {}'s {} KV heads: neither divides the other (the ranks split "
        "the KV heads, or replicate them when the size is a multiple of {})",
        n, arch, c.num_kv_heads, c.num_kv_heads);
  if (has_dense_layer(c) && c.intermediate_size % n != 0)
    return invalid_argument("--tensor-parallel-size {} cannot split {}'s intermediate_size {} evenly", n, arch,
                            c.intermediate_size);
  if (c.is_moe()) return check_experts(c, n, expert_parallel);
  return Status::ok();
}

}  // namespace

Result<TpShard> TpShard::make(const ModelConfig& c, int rank, int world_size, bool expert_parallel) {
  if (world_size < 1) return invalid_argument("--tensor-parallel-size must be at least 1, got {}", world_size);
  if (rank < 0 || rank >= world_size) return invalid_argument("rank {} is outside [0, {})", rank, world_size);
  expert_parallel = expert_parallel && c.is_moe();
  BATON_RETURN_IF_ERROR(check_layout(c, world_size, expert_parallel));
  TpShard s;
  s.rank = rank;
  s.world_size = world_size;
  s.num_heads = c.num_heads / world_size;
  s.head_begin = rank * s.num_heads;
  if (c.is_mla()) {  // the latent: one cached row that every rank keeps whole
    s.num_kv_heads = 1;
    s.kv_head_begin = 0;
    s.kv_head_replicas = world_size;
  } else if (world_size <= c.num_kv_heads) {
    s.num_kv_heads = c.num_kv_heads / world_size;
    s.kv_head_begin = rank * s.num_kv_heads;
  } else {  // each KV head on world_size / num_kv_heads ranks: the one this rank's query heads read
    s.num_kv_heads = 1;
    s.kv_head_replicas = world_size / c.num_kv_heads;
    s.kv_head_begin = rank / s.kv_head_replicas;
  }
  s.intermediate_size = c.intermediate_size / world_size;
  s.intermediate_begin = rank * s.intermediate_size;
  s.shared_intermediate_size = c.deepseek_moe.n_shared_experts * c.moe_intermediate_size / world_size;
  s.shared_intermediate_begin = rank * s.shared_intermediate_size;
  s.expert_parallel = expert_parallel;
  if (expert_parallel) {  // whole experts, a contiguous run of them per rank (vLLM's expert_map)
    s.moe_intermediate_size = c.moe_intermediate_size;
    s.num_local_experts = c.num_experts / world_size;
    s.expert_begin = rank * s.num_local_experts;
  } else {
    s.moe_intermediate_size = c.moe_intermediate_size / world_size;
    s.moe_intermediate_begin = rank * s.moe_intermediate_size;
    s.num_local_experts = c.num_experts;
  }
  s.vocab_per_rank = (static_cast<int64_t>(c.vocab_size) + world_size - 1) / world_size;
  s.vocab_begin = rank * s.vocab_per_rank;
  return s;
}

ModelConfig TpShard::rank_config(const ModelConfig& c) const {
  ModelConfig r = c;
  r.num_heads = num_heads;
  // MLA's config lists as many KV heads as query heads (kv_b_proj's per-head K/V).
  r.num_kv_heads = c.is_mla() ? num_heads : num_kv_heads;
  r.intermediate_size = intermediate_size;
  r.moe_intermediate_size = moe_intermediate_size;
  return r;
}

int64_t TpShard::vocab_count(const ModelConfig& c) const {
  const int64_t end = std::min<int64_t>(vocab_begin + vocab_per_rank, c.vocab_size);
  return std::max<int64_t>(0, end - vocab_begin);
}

Status check_tensor_parallel(const ModelConfig& config, int world_size, bool expert_parallel) {
  return TpShard::make(config, 0, world_size, expert_parallel).status();
}

}  // namespace baton
