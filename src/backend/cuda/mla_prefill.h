// Multi-head latent attention for prefill steps in the expanded form (what
// FlashMLA's and vLLM's MLA prefill paths do): each sequence's latent rows
// (context and new tokens alike, read back from the paged cache) go through
// kv_b_proj once, giving per-head K_nope and V; K = [K_nope[h], k_rope] with
// the rope part shared by the heads, Q = [q_nope[h], rope(q_pe[h])], and a
// FlashAttention-style causal kernel over them with qk head dim 192 and v
// head dim 128 (the warp-specialised wgmma kernel, attention_wgmma_ws.cu).
// Executes the model's attention FLOPs (2 x (192 + 128) per key and head)
// instead of the absorbed form's (2 x (576 + 512)), for the cost of the
// expansion GEMM (2 x 512 x heads x 256 per key). Decode and small prefills
// keep the absorbed form (mla.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/kernels.h"

namespace baton::cuda {

// Prefill steps of fewer new tokens run absorbed: expanding costs 2 x 512 x
// heads x 256 FLOPs per key, which the cheaper attention (2 x heads x 768
// fewer per query and key, at a faster kernel) repays from about a hundred
// queries on.
constexpr int kMlaExpandMinTokens = 128;

// The head dims the expanded kernel is built for (DeepSeek-V3's).
constexpr int kMlaExpandedNope = 128, kMlaExpandedRope = 64, kMlaExpandedV = 128;
// Whether a model's head dims are those.
bool mla_expanded_supports(int nope, int rope_dim, int v_dim);
// Query tokens per work item of the expanded attention kernel.
int mla_expanded_rows_per_item();
// An upper bound on the work items of a step of num_tokens tokens over num_seqs sequences.
int mla_expanded_max_items(int num_tokens, int num_seqs);

// Per sequence s: key_start[s] = seq_lens[0] + ... + seq_lens[s - 1] (its
// first row in the gathered/expanded buffers); the work items (seq, first
// query token of a tile of mla_expanded_rows_per_item() tokens), the last
// (heaviest) tiles of each sequence first, and their count in num_items[0].
void launch_mla_expand_plan(const int32_t* query_start, const int32_t* seq_lens, int num_seqs, int32_t* key_start,
                            int32_t* items, int32_t* num_items, cudaStream_t stream);

// latent_out[key_start[s] + j] = the cached latent row of key j of sequence s
// (j < seq_lens[s] <= max_keys), kv.token_elems values per row.
struct MlaGatherArgs {
  KvDev kv;
  int layer = 0;
  const int32_t* block_tables = nullptr;  // [S, max_blocks_per_seq]
  int max_blocks_per_seq = 0;
  const int32_t* seq_lens = nullptr;   // [S]
  const int32_t* key_start = nullptr;  // [S]
  int num_seqs = 0, max_keys = 0;
  bf16* latent_out = nullptr;  // [sum seq_lens, kv.token_elems]
};
void launch_mla_gather_latent(const MlaGatherArgs& a, cudaStream_t stream);

// Causal attention of the expanded form: for query token i of sequence s and
// head h, keys j <= ctx_s + i of the sequence (row r = key_start[s] + j):
// K = [kv[r, h, 0:128], k_rope[r, 0:64]], V = kv[r, h, 128:256].
struct MlaExpandedAttnArgs {
  const bf16* q = nullptr;       // [T, heads, 192]: q_nope then the roped q_pe
  bf16* out = nullptr;           // [T, heads, 128]
  const bf16* kv = nullptr;      // [keys, heads, 256]: K_nope then V per head (kv_b_proj's output)
  int64_t kv_stride = 0;         // elements between keys
  const bf16* k_rope = nullptr;  // [keys, ...]: the shared roped key part
  int64_t k_rope_stride = 0;
  const int32_t* query_start = nullptr;  // [S + 1]
  const int32_t* seq_lens = nullptr;     // [S]
  const int32_t* key_start = nullptr;    // [S]
  const int32_t* num_items = nullptr;    // [1]: the items that exist of the max_items launched
  int num_seqs = 0, num_heads = 0;
  float scale = 1.0f;
};
void launch_mla_attention_prefill_expanded(const MlaExpandedAttnArgs& a, const int32_t* work, int max_items,
                                           cudaStream_t stream);

class Gemm;
// One layer's attention in the expanded form over a step's sequences, what
// the backend runs: the plan, the gather of the latent rows, their expansion
// through kv_b_proj (`gemm`) and the attention kernel (kernel_start, when
// given, is recorded just before the kernel: timing).
struct MlaExpandedStep {
  const bf16* q = nullptr;  // [T, heads, 192], q_pe roped
  bf16* out = nullptr;      // [T, heads, 128]
  KvDev kv;                 // the latent cache (rows of kv_lora_rank + 64)
  int layer = 0;
  const int32_t* query_start = nullptr;   // [S + 1]
  const int32_t* seq_lens = nullptr;      // [S]
  const int32_t* block_tables = nullptr;  // [S, max_blocks_per_seq]
  int max_blocks_per_seq = 0, num_seqs = 0, num_tokens = 0;
  int64_t total_keys = 0;      // the sum of seq_lens
  const bf16* kv_b = nullptr;  // kv_b_proj [heads * 256, kv_lora_rank]
  int num_heads = 0, kv_lora_rank = 0;
  float scale = 1.0f;
  // Workspace: latent_rows [total_keys, kv.token_elems], kv_rows [total_keys,
  // heads * 256], plan [mla_expanded_plan_ints(num_tokens, num_seqs)].
  bf16* latent_rows = nullptr;
  bf16* kv_rows = nullptr;
  int32_t* plan = nullptr;
};
int mla_expanded_plan_ints(int num_tokens, int num_seqs);
void launch_mla_expanded_attention(const MlaExpandedStep& s, Gemm& gemm, cudaStream_t stream,
                                   cudaEvent_t kernel_start = nullptr);

}  // namespace baton::cuda
