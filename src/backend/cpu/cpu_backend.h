// The reference backend: the forward pass of llama, qwen2, qwen3, qwen3_moe
// and deepseek_v3 on the CPU in fp32 (weights converted at load), over a
// paged KV cache in kv_layout.h's layout (per-head K/V, or deepseek_v3's
// latent rows) of fp32 or, at --kv-cache-dtype fp8, e4m3 values (quantised
// as they are written, dequantised as attention reads them),
// multi-threaded with its own ThreadPool.
//
// Each output element is computed by the same arithmetic wherever its token
// sits, so results are bitwise independent of batch composition, chunking
// and thread count (tests/backend/cpu_consistency_test.cpp).
// execute() and forward_all_logits() are called from one thread at a time.
//
// Tensor parallelism: a CpuBackend made with a CpuTpRank is one rank of an
// instance. It holds its shard's weights and KV heads (model/tp_shard.h),
// all-reduces after o_proj and the MLP and gathers the logits over its
// Communicator; rank 0 samples, the other ranks return no samples. The
// ranks run together under TensorParallelBackend (backend/
// tensor_parallel_backend.h).
#pragma once

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "backend/backend_factory.h"
#include "backend/communicator.h"
#include "backend/cpu/cpu_weights.h"
#include "backend/sampler.h"
#include "common/thread_pool.h"
#include "model/checkpoint.h"
#include "model/tp_shard.h"

namespace baton {

// One rank of a tensor-parallel instance: its slice and its link to the
// other ranks (not owned; it outlives the backend).
struct CpuTpRank {
  TpShard shard;
  Communicator* comm = nullptr;
};

class CpuBackend final : public Backend {
 public:
  // The KV cache budget when BackendOptions::cpu_kv_cache_bytes is 0 (a
  // tensor-parallel instance divides it among its ranks).
  static constexpr size_t kDefaultKvBytes = size_t{1} << 30;  // 1 GiB

  // Converts the checkpoint's weights; the checkpoint may be closed afterwards.
  static Result<std::unique_ptr<CpuBackend>> create(const Checkpoint& ckpt, const BackendOptions& options = {});
  // One rank of a tensor-parallel instance: converts only its slice.
  static Result<std::unique_ptr<CpuBackend>> create_rank(const Checkpoint& ckpt, const BackendOptions& options,
                                                         const CpuTpRank& rank);

  const ModelConfig& model_config() const override { return model_config_; }
  std::string device_name() const override { return "cpu"; }
  size_t kv_block_bytes(int block_size) const override;
  size_t available_kv_bytes() const override { return kv_budget_bytes_; }
  Status init_kv_cache(int num_blocks, int block_size) override;
  KvMemory kv_memory() override;
  Result<StepOutput> execute(const StepInput& in) override;

  // Tests and tools: runs `in` exactly as execute() does (writing its K/V)
  // but samples nothing and returns the logits of every token,
  // [num_tokens, vocab].
  Result<std::vector<float>> forward_all_logits(const StepInput& in);

  // The checks execute() makes of `in` before it computes anything (no
  // collective is entered when they fail).
  Status validate(const StepInput& in) const;

  int num_threads() const { return pool_->num_threads(); }
  size_t weight_bytes() const { return weights_.num_bytes(); }
  size_t routed_expert_bytes() const { return weights_.routed_expert_bytes(); }

 private:
  CpuBackend(const ModelConfig& model_config, const CpuTpRank& rank, CpuWeights weights,
             std::unique_ptr<ThreadPool> pool, size_t kv_budget_bytes, DType kv_dtype);

  // Runs every layer over in's tokens; leaves the hidden states in hidden_.
  // An error (a failed collective) has already broken the rank group.
  Status forward_layers(const StepInput& in);
  // forward_layers then compute_logits for `rows`; a failure aborts the rank group.
  Status forward(const StepInput& in, const std::vector<int64_t>& rows, std::vector<float>& logits);
  // The token embeddings into hidden_ (vocabulary-parallel: summed over ranks).
  Status embed(const StepInput& in);
  // Sums `count` floats of `data` over the ranks (nothing at TP=1).
  Status all_reduce(float* data, int64_t count);
  void attention(const StepInput& in, int layer);
  // paged_attention's arguments for this step's tokens over layer `layer`'s cache.
  PagedAttentionArgs paged_args(const StepInput& in, int layer, const float* q, float scale) const;
  // Multi-head latent attention (cpu_mla_attention.cpp): caches the latent
  // row, attends in latent space (absorbed form), leaves o_proj's output in proj_.
  void mla_attention(const StepInput& in, int layer);
  // DeepSeekMoE's shared experts over normed_, added into proj_.
  void add_shared_experts(int layer, int64_t num_tokens);
  void dense_mlp(int layer, int64_t num_tokens);
  void moe_mlp(int layer, int64_t num_tokens);
  // Final norm + LM head for `rows` of hidden_: logits [rows.size(), vocab]
  // (every rank's vocabulary slice, gathered).
  Status compute_logits(const std::vector<int64_t>& rows, std::vector<float>& logits);

  ModelConfig model_config_;  // the model's
  ModelConfig config_;        // this rank's share of it (TpShard::rank_config): the shapes computed here
  TpShard shard_;
  Communicator* comm_ = nullptr;  // null at TP=1
  CpuWeights weights_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<float> inv_freq_;  // [head_dim / 2]
  size_t kv_budget_bytes_ = 0;
  KvLayout layout_;
  // layout_.total_bytes(): F32, or F8_E4M3 at --kv-cache-dtype fp8 (cpu_ops.h's write_kv quantises).
  std::unique_ptr<float[]> kv_;
  Sampler sampler_;

  // Per-step scratch, resized to the step's token count.
  std::vector<float> hidden_;          // [num_tokens, hidden]
  std::vector<float> normed_;          // [num_tokens, hidden]
  std::vector<float> qkv_;             // [num_tokens, q_size + 2 * kv_size]
  std::vector<float> q_;               // [num_tokens, num_heads, head_dim]
  std::vector<float> k_;               // [num_tokens, num_kv_heads, head_dim]
  std::vector<float> v_;               // [num_tokens, num_kv_heads, head_dim]
  std::vector<float> attn_;            // [num_tokens, num_heads * head_dim]
  std::vector<float> proj_;            // [num_tokens, hidden]
  std::vector<float> gate_up_;         // [num_tokens, 2 * intermediate]
  std::vector<float> act_;             // [num_tokens, intermediate]
  std::vector<int32_t> seq_of_token_;  // [num_tokens]
  std::vector<float> cos_sin_;         // [num_tokens, 2, head_dim / 2]: RoPE of this step
  // MLA scratch (deepseek_v3).
  std::vector<float> latent_rows_;  // [num_tokens, kv_lora_rank + qk_rope_head_dim]: the rows cached
  std::vector<float> q_latent_;     // [num_tokens, num_heads, kv_lora_rank + qk_rope_head_dim]
  std::vector<float> head_in_;      // [num_tokens, max(qk_nope_head_dim, kv_lora_rank)]: one head's input
  std::vector<float> head_out_;     // [num_tokens, max(kv_lora_rank, v_head_dim)]: one head's output
};

}  // namespace baton
