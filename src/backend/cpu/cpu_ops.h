// The CPU backend's operators, fp32, with Hugging Face semantics. They are
// the reference the CUDA kernels are tested against, so each is a free
// function over plain arrays (row-major, shapes in the comments).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "kv/kv_layout.h"
#include "model/model_config.h"

namespace baton {

class ThreadPool;

// sum_i a[i] * b[i] (AVX2 with several accumulators where available).
float dot_f32(const float* a, const float* b, int64_t n);

// y[t, o] = sum_i x[t, i] * w[o, i] + bias[o]    (x @ w^T + bias, a Linear)
// x: [num_rows, in], w: [out, in], bias: [out] or null, y: [num_rows, out].
// Cache-blocked, parallel over output rows when `pool` is given.
void matmul(const float* x, int64_t num_rows, int64_t in, const float* w, int64_t out, const float* bias, float* y,
            ThreadPool* pool);

// A [out, in] weight repacked for matmul_packed: panels of kPanelRows rows,
// each stored k-major, data[p][k][j] = w[p * kPanelRows + j, k] (rows past
// `out` are zero). The backend keeps its weights packed this way.
struct PackedWeight {
  static constexpr int kPanelRows = 16;
  int64_t out = 0;
  int64_t in = 0;
  std::vector<float> data;  // [ceil(out / 16), in, 16]

  int64_t num_panels() const { return (out + kPanelRows - 1) / kPanelRows; }
  bool empty() const { return out == 0; }
};
// w: [out, in]; parallel over panels when `pool` is given.
PackedWeight pack_weight(const float* w, int64_t out, int64_t in, ThreadPool* pool = nullptr);

// matmul() over a packed weight: y = x @ w^T + bias; x: [num_rows, in],
// y: [num_rows, w.out]. Outer-product micro-kernel (6 rows x 16 outputs),
// parallel over panels. Every output is the sequential fp32 FMA chain over
// k, whatever the row count, tiling or thread count (batch invariant).
void matmul_packed(const float* x, int64_t num_rows, const PackedWeight& w, const float* bias, float* y,
                   ThreadPool* pool);

// out[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * weight
// x, out: [num_rows, dim] (may alias), weight: [dim].
void rmsnorm(const float* x, const float* weight, int64_t num_rows, int64_t dim, float eps, float* out);

// HF's inverse frequencies, [head_dim / 2]: 1 / theta^(2i / head_dim), then
// the llama3 rescaling (low/high frequency factors, smooth interpolation)
// when `scaling` is given; yarn's (model/yarn.h) when it is of type yarn.
std::vector<float> rope_inv_freq(int head_dim, double theta, const std::optional<RopeScaling>& scaling);

// In-place rotate_half RoPE (non-interleaved: pairs (i, i + head_dim / 2)):
// x: [num_tokens, num_heads, head_dim], positions: [num_tokens],
// inv_freq: [head_dim / 2]. Angle = float(position) * inv_freq[i] in fp32.
void apply_rope(float* x, int64_t num_tokens, int num_heads, int head_dim, const int32_t* positions,
                const float* inv_freq);

// apply_rope in two parts, so a step computes its angles once for all layers:
// cos_sin: [num_tokens, 2, head_dim / 2] (cos then sin of float(position) * inv_freq[i]).
void rope_cos_sin(const int32_t* positions, int64_t num_tokens, const float* inv_freq, int half_dim, float* cos_sin);
void apply_rope_cos_sin(float* x, int64_t num_tokens, int num_heads, int head_dim, const float* cos_sin);

// out[t, j] = silu(gate_up[t, j]) * gate_up[t, inter + j]
// gate_up: [num_tokens, 2 * inter], out: [num_tokens, inter].
void silu_mul(const float* gate_up, int64_t num_tokens, int64_t inter, float* out);

// One cache row of `count` values at element `elem_offset` of a cache of
// `dtype`: F8_E4M3 stores e4m3(x / kKvFp8Scale) (kv/kv_cache_dtype.h); any
// other dtype is held in fp32 here (the CPU backend's F32 cache, or the fp32
// copy of a BF16 cache the CUDA tests compare against).
void store_kv_row(const float* row, int64_t count, DType dtype, void* kv_cache, int64_t elem_offset);
// The row back in fp32: the cache's own floats at F32, else dequantised into
// `scratch` ([count]), which is returned.
const float* load_kv_row(const void* kv_cache, DType dtype, int64_t elem_offset, int64_t count, float* scratch);

// Writes K and V of each new token into its slot of layer `layer`:
// k, v: [num_tokens, num_kv_heads, head_dim], slot_mapping: [num_tokens],
// kv_cache laid out as kv_layout.h says, in store_kv_row's element type for layout.dtype.
void write_kv(const float* k, const float* v, const int64_t* slot_mapping, int64_t num_tokens, const KvLayout& layout,
              int layer, void* kv_cache);

// Writes the MLA latent row of each new token into its slot of layer `layer`
// of a latent layout (layout.is_latent()): rows: [num_tokens, kv_lora_rank +
// qk_rope_head_dim] (normalised latent, then the roped key part).
void write_latent(const float* rows, const int64_t* slot_mapping, int64_t num_tokens, const KvLayout& layout, int layer,
                  void* kv_cache);

// Causal GQA attention over the paged cache of layer `layer`: token t of
// sequence seq_of_token[t] attends to its sequence's positions
// 0..positions[t] (inclusive), found through its block table row.
// q: [num_tokens, num_heads, head_dim], out: [num_tokens, num_heads, head_dim],
// block_tables: [num_seqs, max_blocks_per_seq]. Softmax in fp32 with scale.
// Over a latent layout (MLA in its absorbed form, one KV head) the cached
// row is every head's key and its first kv_lora_rank values its value:
// q: [num_tokens, num_heads, kv_lora_rank + qk_rope_head_dim],
// out: [num_tokens, num_heads, kv_lora_rank].
// An F8_E4M3 cache is read dequantised (load_kv_row); the arithmetic after is the same.
struct PagedAttentionArgs {
  const float* q = nullptr;
  int64_t num_tokens = 0;
  int num_heads = 0;
  const int32_t* positions = nullptr;     // [num_tokens]
  const int32_t* seq_of_token = nullptr;  // [num_tokens]
  const int32_t* block_tables = nullptr;  // [num_seqs, max_blocks_per_seq]
  int max_blocks_per_seq = 0;
  const void* kv_cache = nullptr;  // of layout.dtype
  KvLayout layout;
  int layer = 0;
  float scale = 1.0f;
};
void paged_attention(const PagedAttentionArgs& args, float* out, ThreadPool* pool);

// Qwen3-MoE routing: softmax over the experts in fp32, top-k (descending
// weight), then renormalised to sum 1 when `renormalize` (norm_topk_prob).
// router_logits: [num_tokens, num_experts], topk_ids / topk_weights: [num_tokens, top_k].
void moe_route(const float* router_logits, int64_t num_tokens, int num_experts, int top_k, bool renormalize,
               int32_t* topk_ids, float* topk_weights);

// DeepSeek-V3 routing (noaux_tc): scores = sigmoid(logits); experts are
// chosen by scores + correction_bias, only within the topk_group groups (of
// num_experts / n_group consecutive experts) whose two best biased scores sum
// highest; the chosen experts' unbiased scores are renormalised to sum 1 when
// `renormalize`, then multiplied by routed_scaling_factor.
// router_logits: [num_tokens, num_experts], correction_bias: [num_experts],
// topk_ids / topk_weights: [num_tokens, top_k] (descending biased score).
struct GroupedTopkArgs {
  int num_experts = 0;
  int top_k = 0;
  int n_group = 1;
  int topk_group = 1;
  bool renormalize = true;
  float routed_scaling_factor = 1.0f;
};
void grouped_topk_route(const float* router_logits, const float* correction_bias, int64_t num_tokens,
                        const GroupedTopkArgs& args, int32_t* topk_ids, float* topk_weights);

// In-place RoPE on the first rotary_dim values of each head row:
// head h of token t starts at x + (t * num_heads + h) * head_stride.
// interleaved: pairs (2i, 2i + 1) (GPT-J style; DeepSeek checkpoints),
// else pairs (i, i + rotary_dim / 2). cos_sin as rope_cos_sin writes it.
void apply_rope_strided(float* x, int64_t num_tokens, int num_heads, int64_t head_stride, int rotary_dim,
                        bool interleaved, const float* cos_sin);

// Row gather: out[t, :] = table[ids[t], :]; table: [rows, dim], out: [num_ids, dim].
void embedding(const float* table, int64_t dim, const int32_t* ids, int64_t num_ids, float* out);
// The same gather from a packed [rows, dim] table (tied embeddings read the LM head).
void embedding_packed(const PackedWeight& table, const int32_t* ids, int64_t num_ids, float* out);

}  // namespace baton
