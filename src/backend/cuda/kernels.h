// Host entry points of the CUDA backend's own kernels. All pointers are
// device pointers; every launch goes on `stream` and checks its launch error.
// bf16 storage, fp32 arithmetic inside every kernel.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace baton::cuda {

using bf16 = __nv_bfloat16;

// The paged KV cache (kv/kv_layout.h) as the kernels address it:
// kv[num_blocks][num_layers][2][block_size][num_kv_heads][head_dim].
// At --kv-cache-dtype fp8 the cache is e4m3 (kv/kv_cache_dtype.h, scale
// kKvFp8Scale): `fp8` points at it and `base` is null; element offsets are
// the same.
struct KvDev {
  bf16* base = nullptr;
  uint8_t* fp8 = nullptr;
  int64_t block_elems = 0;
  int64_t layer_block_elems = 0;
  int64_t half_elems = 0;   // one of K/V of one layer of one block
  int64_t token_elems = 0;  // num_kv_heads * head_dim
  int block_size = 16;
};

// residual[t, :] = float(table[ids[t], :])            // [T, H]
void launch_embedding(const int32_t* ids, const bf16* table, float* residual, int num_tokens, int hidden, int vocab,
                      cudaStream_t stream);

// For each output row r: x = residual[src] (+ add[src] + add_bias); out[r] =
// rmsnorm(x) * w. src = rows ? rows[r] : r. Without `rows`, residual[src] = x.
void launch_add_rmsnorm(float* residual, const bf16* add, const bf16* add_bias, const bf16* weight, bf16* out,
                        const int32_t* rows, int num_rows, int hidden, float eps, cudaStream_t stream);
// The input of a kernel that runs that norm itself (the GEMV's norm-in form,
// the MoE router's): x = rmsnorm(residual) * weight, as launch_add_rmsnorm
// makes it without `add` and `rows`.
struct GemvNormIn {
  const float* residual = nullptr;  // [m, k] fp32
  const bf16* weight = nullptr;     // [k]
  float eps = 0.0f;
};

// qkv: [T, (nh + 2*nkv) * hd]. Adds the bias, applies the per-head q/k RMSNorm
// (Qwen3) and RoPE (inv_freq: [hd/2]) to q and k, writes q to q_out [T, nh*hd]
// and k, v to the cache rows of slot_mapping[t] in `layer`.
struct QkvRopeArgs {
  const bf16* qkv = nullptr;
  const bf16* bias = nullptr;    // [(nh + 2*nkv) * hd] or null
  const bf16* q_norm = nullptr;  // [hd] or null
  const bf16* k_norm = nullptr;  // [hd] or null
  float eps = 1e-6f;
  const int32_t* positions = nullptr;
  const int64_t* slot_mapping = nullptr;
  const float* inv_freq = nullptr;
  bf16* q_out = nullptr;
  KvDev kv;
  int layer = 0;
  int num_tokens = 0, num_heads = 0, num_kv_heads = 0, head_dim = 0;
  // The kernel before triggers at its start (a skinny GEMV), so this one's
  // blocks are resident while it runs: compute the rotation (positions and
  // inv_freq only) before the programmatic wait. After a kernel that
  // triggers at its end the rotation covers the row's loads instead.
  bool rotation_before_wait = false;
};
void launch_qkv_rope_cache(const QkvRopeArgs& a, cudaStream_t stream);

// out[t, i] = silu(gu[t, i]) * gu[t, inter + i]       // gu: [T, 2*inter]
void launch_silu_mul(const bf16* gu, bf16* out, int num_rows, int inter, cudaStream_t stream);

// Attention over the paged cache. Query rows of sequence s are tokens
// [query_start[s], query_start[s+1]), the last ones of its seq_lens[s] cached
// tokens (causal). GQA: a block serves all query heads of one KV head.
struct AttnArgs {
  const bf16* q = nullptr;  // [T, nh, hd]
  bf16* out = nullptr;      // [T, nh, hd]
  KvDev kv;
  int layer = 0;
  const int32_t* query_start = nullptr;   // [S + 1]
  const int32_t* seq_lens = nullptr;      // [S]
  const int32_t* block_tables = nullptr;  // [S, max_blocks_per_seq]
  int max_blocks_per_seq = 0;
  int num_seqs = 0, num_heads = 0, num_kv_heads = 0, head_dim = 0;
  float scale = 1.0f;
};
// Any query lengths. work: [num_items, 2] (seq, first query row of the tile);
// a tile is attention_rows_per_tile() (token, head-in-group) rows. Head_dim
// 128 with a power-of-two block size runs the Hopper kernel
// (attention_wgmma.h), every other shape the mma.sync kernel (attention.cu).
int attention_rows_per_tile();
void launch_attention_prefill(const AttnArgs& a, const int32_t* work, int num_items, cudaStream_t stream);
// One query token per sequence, the context split in chunks of split_len
// keys (a multiple of 64) over up to max_splits blocks (max_splits * split_len
// must cover the longest context); partial: [S, nh, max_splits, hd + 2] floats.
void launch_attention_decode(const AttnArgs& a, int split_len, int max_splits, float* partial, cudaStream_t stream);

// MoE. router: [T, E] fp32 logits -> softmax, top-k (ties: lower expert), optional renorm.
void launch_moe_topk(const float* router, int num_tokens, int num_experts, int k, bool renorm, int32_t* topk_ids,
                     float* topk_w, cudaStream_t stream);
// Softmax top-k routing and the expert sort together (launch_moe_topk, then
// launch_moe_align_local over experts [expert_begin, expert_begin +
// num_experts) of total_experts): one launch up to kMoeRouteOneBlockTokens
// tokens (decode), the two kernels above it.
constexpr int kMoeRouteOneBlockTokens = 8;
void launch_moe_route(const float* router, int num_tokens, int total_experts, int k, bool renorm, int expert_begin,
                      int num_experts, int32_t* topk_ids, float* topk_w, int32_t* offsets, int32_t* sorted_slots,
                      int32_t* slot_pos, cudaStream_t stream, int32_t* runs = nullptr);
// The router's logits (x [T, hidden] . router_w [total_experts, hidden]^T into
// logits [T, total_experts] fp32, as the skinny GEMV computes them) and
// launch_moe_route, in one launch, for decode's 1 to kMoeRouteOneBlockTokens
// tokens. count: one int32, zero before the launch and left zero by it.
// runs (optional, [T*k]): for each sorted position, e | rows << 16 at the
// first of local expert e's rows, else -1 (MoeRouting::runs). These forms
// and launch_moe_route's one-launch form (up to kMoeRouteOneBlockTokens
// tokens; above, runs must be null) write them. One token runs as one
// thread-block cluster (moe_router.cu) when one_token_cluster is set, which
// the caller sets only where moe_router_cluster_fits said yes; else as 2-8
// tokens do, with the same results.
bool moe_router_route_supports(int num_tokens, int hidden, int total_experts, int k);
// Whether one token's cluster router (8 blocks resident at once in one GPC)
// can run on the current device: a share of its SMs (an MPS client's, say)
// may not hold it. Asked once, outside any graph capture.
bool moe_router_cluster_fits(int hidden, bool norm_in);
void launch_moe_router_route(const bf16* x, const bf16* router_w, int num_tokens, int hidden, int total_experts, int k,
                             bool renorm, int expert_begin, int num_experts, float* logits, int32_t* count,
                             int32_t* topk_ids, float* topk_w, int32_t* offsets, int32_t* sorted_slots,
                             int32_t* slot_pos, cudaStream_t stream, int32_t* runs = nullptr,
                             bool one_token_cluster = false);
// The same with the post-attention RMSNorm in it (decode on one rank): x =
// rmsnorm(in.residual) * in.weight, rounded as launch_add_rmsnorm rounds it,
// is the router's input and is written to normed [T, hidden] for the experts.
bool moe_norm_router_route_supports(int num_tokens, int hidden, int total_experts, int k);
void launch_moe_norm_router_route(const GemvNormIn& in, bf16* normed, const bf16* router_w, int num_tokens, int hidden,
                                  int total_experts, int k, bool renorm, int expert_begin, int num_experts,
                                  float* logits, int32_t* count, int32_t* topk_ids, float* topk_w, int32_t* offsets,
                                  int32_t* sorted_slots, int32_t* slot_pos, cudaStream_t stream,
                                  int32_t* runs = nullptr, bool one_token_cluster = false);
// Sorts the T*k (token, choice) slots by expert: offsets [E+1], sorted_slots
// [T*k] (slot = t*k + j), slot_pos [T*k] (slot -> sorted position).
void launch_moe_align(const int32_t* topk_ids, int num_slots, int num_experts, int32_t* offsets, int32_t* sorted_slots,
                      int32_t* slot_pos, cudaStream_t stream);
// Grouped GEMM: for each expert e and sorted row i in [offsets[e], offsets[e+1]):
// C[i, :] = A[a_rows ? a_rows[i] / a_row_div : i, :] . W[e]^T    W: [E, N, K]
struct GroupedGemmArgs {
  const bf16* a;           // [*, k]
  const int32_t* a_rows;   // [num_rows] or null (row i of A)
  int a_row_div;           // a_rows holds (token, choice) slots: token = slot / a_row_div
  const bf16* w;           // [num_experts, n, k]
  const int32_t* offsets;  // [num_experts + 1], on the device
  int num_experts, num_rows, n, k;
  bf16* c;  // [num_rows, n], or gated [num_rows, n / 2]
  // W's rows are gate [n / 2] then up [n / 2] (an expert's gate/up projection)
  // and C = silu(gate) * up, each product rounded to bf16 first as the
  // unfused GEMM and silu_mul do: the wgmma kernel only.
  bool gated = false;
};
// row_invariant: every row computed the same way whatever the others are
// (batch-invariant mode: the mma.sync tiles, one k order at every tile shape);
// otherwise many rows an expert (prefill) take the wgmma kernel.
void launch_grouped_gemm(const GroupedGemmArgs& g, bool row_invariant, cudaStream_t stream);
// An expert block's gate/up projection and SwiGLU: act [num_rows, n / 2] =
// silu(gate) * up of g (g.c, g.gated ignored): in one gated wgmma GEMM where
// it runs, else the GEMM into gu [num_rows, n] and launch_silu_mul.
void launch_moe_gate_up(GroupedGemmArgs g, bf16* gu, bf16* act, bool row_invariant, cudaStream_t stream);
// The wgmma kernel (sm_90a) alone, in 128 x tile_n tiles (tile_n 128 or 256),
// for shapes grouped_gemm_wgmma_fits.
bool grouped_gemm_wgmma_fits(int n, int k, int num_experts);
void launch_grouped_gemm_wgmma(const GroupedGemmArgs& g, int tile_n, cudaStream_t stream);
// y[m, n] = x[m, k] . w[n, k]^T with each row computed the same way whatever
// m is (batch-invariant mode; cuBLASLt picks algorithms by shape).
void launch_gemm_row_invariant(const bf16* x, const bf16* w, void* y, int m, int n, int k, bool y_f32,
                               cudaStream_t stream);
// Skinny GEMM for m <= 8 (decode): y[m, n] = x[m, k] . w[n, k]^T, k % 8 == 0.
bool gemv_supports(int m, int k);
void launch_gemv(const bf16* x, const bf16* w, void* y, int m, int n, int k, bool y_f32, cudaStream_t stream);
// The same with the SwiGLU activation fused (decode's gate/up projection): w is
// [2 * inter, k] (gate rows, then up rows) and out[m, j] = silu(g) * u for the
// products g = x.w[j], u = x.w[inter + j], each rounded to bf16 first, as
// launch_gemv then launch_silu_mul compute it.
void launch_gemv_silu_mul(const bf16* x, const bf16* w, bf16* out, int m, int inter, int k, cudaStream_t stream);
// The GEMV's fused forms for decode at 1 or 2 rows (gemv.cuh), which take in
// the RMSNorm before a linear and the residual add after it:
//   norm-in:      y = (rmsnorm(residual[m, :]) * weight) . w^T, x rounded to
//                 bf16 as launch_add_rmsnorm rounds it (gated: the SwiGLU
//                 form of launch_gemv_silu_mul, w [2n, k], y [m, n]);
//   residual-add: residual[m, :n] += bf16(x . w^T) (+ bias), as
//                 launch_add_rmsnorm adds it.
// (GemvNormIn: above, with launch_add_rmsnorm.)
bool gemv_norm_in_supports(int m, int k, bool fp8_weight);
bool gemv_residual_add_supports(int m, int k, bool fp8_weight);
void launch_gemv_norm_in(const GemvNormIn& in, const bf16* w, bf16* y, int m, int n, int k, bool gated,
                         cudaStream_t stream);
void launch_gemv_residual_add(const bf16* x, const bf16* w, const bf16* bias, float* residual, int m, int n, int k,
                              cudaStream_t stream);
// The expert GEMMs at decode's small batches (num_tokens <= 8, so no expert
// has more than 8 rows): the skinny kernel per routed expert over moe_align's
// sorted slots, each expert's weight read once for all its rows, instead of
// the grouped GEMM's 16-row tiles. For sorted position p of expert e:
//   gated: C[p, :n] = silu(g) * u, g|u = A[a_rows[p] / a_row_div] . W[e]^T,
//          W [E, 2n, k] (gate rows, then up rows), both rounded to bf16 first;
//   plain: C[p, :n] = A[p] . W[e]^T (a_rows null), W [E, n, k].
struct MoeRouting {                   // moe_align_local's sorted slots
  const int32_t* topk_ids = nullptr;  // [num_tokens * top_k], global expert ids
  const int32_t* sorted_slots = nullptr;
  const int32_t* offsets = nullptr;  // [num_experts + 1]
  int expert_begin = 0, num_experts = 0;
  int num_tokens = 0, num_rows = 0;  // rows: num_tokens * top_k slots
  const int32_t* runs = nullptr;     // optional: a one-launch routing's runs, [num_rows] (below)
};
// A runs entry: at the first sorted row of local expert e, e | rows << 16
// (rows of that expert); every other position -1.
constexpr int kMoeRunRowsShift = 16;
constexpr int32_t kMoeRunExpertMask = (1 << kMoeRunRowsShift) - 1;
struct MoeProjection {
  const bf16* a = nullptr;
  const int32_t* a_rows = nullptr;  // the gate/up's: sorted_slots (row = slot / a_row_div); null: row p
  int a_row_div = 1;
  const bf16* w = nullptr;
  int n = 0, k = 0;
  bool gated = false;
  bf16* c = nullptr;  // [num_rows, n]
  // The runs were written before the kernel this launch follows (the down
  // projection after the gate/up): read them before the programmatic wait.
  bool runs_before_wait = false;
};
bool moe_skinny_supports(int num_tokens, int k);
void launch_moe_skinny(const MoeRouting& r, const MoeProjection& p, cudaStream_t stream);
// out[t, :] = sum_j topk_w[t, j] * expert_out[slot_pos[t*k + j], :] (+ add[t, :]: shared experts)
void launch_moe_combine(const bf16* expert_out, const int32_t* slot_pos, const float* topk_w, int num_tokens, int k,
                        int hidden, bf16* out, cudaStream_t stream, const bf16* add = nullptr);
// The combine above, rounded to bf16, then as launch_add_rmsnorm(residual, it,
// nullptr, norm_w, normed) without rows: residual[t] += it, normed[t] =
// rmsnorm(residual[t]) * norm_w. One launch; the combined row is not stored.
// inputs_before_wait: slot_pos, topk_w and residual were written before the
// kernel this launch follows (the MoE block's routing and the attention's
// residual add, with the experts' kernels between): read before the
// programmatic wait, so only the expert rows and add are read after it.
void launch_moe_combine_norm(const bf16* expert_out, const int32_t* slot_pos, const float* topk_w, int num_tokens,
                             int k, int hidden, const bf16* add, float* residual, const bf16* norm_w, float eps,
                             bf16* normed, cudaStream_t stream, bool inputs_before_wait = false);

// ---- Multi-head latent attention (DeepSeek-V3), absorbed form (mla.cu).
// The cache is a latent layout (kv_layout.h): one row of kv_lora_rank +
// rope_dim values per token per layer (KvDev with token_elems = that width).

// Per token t of qkv_a [T, qkv_a_stride] (q rows first, q_cols of them, then
// the latent's kv_lora_rank and the key's rope_dim): with q LoRA
// (q_a_norm set), q_a_out[t] = rmsnorm(q rows) * q_a_norm [T, q_cols]; the
// cache row of slot_mapping[t] (skipped when < 0) = [rmsnorm(latent) *
// kv_a_norm, rope(key part)]. RoPE: angle position * inv_freq[i] (fp32),
// cos and sin times rope_scale (yarn's attention factor), pairs (2i, 2i+1)
// when interleaved else (i, i + rope_dim / 2).
struct MlaPrepareArgs {
  const bf16* qkv_a = nullptr;
  int64_t qkv_a_stride = 0;
  int q_cols = 0;
  const bf16* q_a_norm = nullptr;   // [q_cols] or null (no q LoRA)
  bf16* q_a_out = nullptr;          // [T, q_cols] with q_a_norm
  const bf16* kv_a_norm = nullptr;  // [kv_lora_rank]
  float eps = 1e-6f;
  const int32_t* positions = nullptr;
  const int64_t* slot_mapping = nullptr;
  const float* inv_freq = nullptr;  // [rope_dim / 2]
  float rope_scale = 1.0f;
  bool interleaved = true;
  KvDev kv;
  int layer = 0;
  int num_tokens = 0, kv_lora_rank = 0, rope_dim = 0;
};
void launch_mla_prepare(const MlaPrepareArgs& a, cudaStream_t stream);

// q: [T, heads, nope + rope_dim] with rows q_stride apart. Writes
// rope(q[t, h, nope:]) to q_latent[t, h, kv_lora_rank:] ([T, heads,
// kv_lora_rank + rope_dim]); the absorbed nope part is a batched GEMM.
struct MlaQRopeArgs {
  const bf16* q = nullptr;
  int64_t q_stride = 0;
  bf16* q_latent = nullptr;
  const int32_t* positions = nullptr;
  const float* inv_freq = nullptr;
  float rope_scale = 1.0f;
  bool interleaved = true;
  int num_tokens = 0, num_heads = 0, nope = 0, rope_dim = 0, kv_lora_rank = 0;
};
void launch_mla_q_rope(const MlaQRopeArgs& a, cudaStream_t stream);

// uk_t[h, r, d] = kv_b[h * (nope + v_dim) + d, r]: each head's W_UK,
// transposed, from kv_b_proj [heads * (nope + v_dim), rank].
void launch_mla_split_uk(const bf16* kv_b, bf16* uk_t, int num_heads, int nope, int v_dim, int rank,
                         cudaStream_t stream);

// Attention on the latent: every head attends to the cached rows (keys, all
// kv_lora_rank + rope_dim wide) with values their first kv_lora_rank values.
// The AttnArgs fields as there (num_kv_heads and head_dim unused), with
// q: [T, heads, rank + rope], out: [T, heads, rank]. Rows of sequence s are
// (token, head) pairs, head fastest; causal as AttnArgs.
struct MlaAttnArgs : AttnArgs {
  int kv_lora_rank = 0, rope_dim = 0;
};
// The (kv_lora_rank, rope_dim) pairs the kernel is built for.
bool mla_attention_supports(int kv_lora_rank, int rope_dim);
// Rows (token, head) per work tile.
int mla_rows_per_tile();
// Any query lengths; work: [num_items, 2] (seq, first row of the tile).
void launch_mla_attention_prefill(const MlaAttnArgs& a, const int32_t* work, int num_items, cudaStream_t stream);
// One query token per sequence, the context split in chunks of split_len keys
// (a multiple of 64) over max_splits; partial: [S, heads, max_splits, rank + 2]
// floats (unused when max_splits == 1).
void launch_mla_attention_decode(const MlaAttnArgs& a, int split_len, int max_splits, float* partial,
                                 cudaStream_t stream);

// DeepSeek-V3 routing (cpu_ops.h grouped_topk_route): router [T, E] fp32
// logits, bias [E] fp32; sigmoid scores, group-limited top-k on the biased
// scores (ties: lower group, lower expert), weights = scores (renormalised
// when renorm) * scaling.
struct GroupedTopkDevArgs {
  int num_experts = 0, top_k = 0, n_group = 1, topk_group = 1;
  bool renorm = true;
  float scaling = 1.0f;
};
void launch_moe_grouped_topk(const float* router, const float* bias, int num_tokens, const GroupedTopkDevArgs& a,
                             int32_t* topk_ids, float* topk_w, cudaStream_t stream);

// Random init (benchmarks): x[i] = bf16(uniform(-scale, scale)) from (seed, i).
void launch_fill_random(bf16* x, int64_t n, float scale, uint64_t seed, cudaStream_t stream);
void launch_fill_const(bf16* x, int64_t n, float value, cudaStream_t stream);
// Holds `stream` until the host sets *flag (mapped pinned memory) or 2 s pass:
// the profiler queues a whole step behind it to time the GPU's part alone.
void launch_hold_stream(const int* flag, cudaStream_t stream);
// A kernel without parameters that only waits for the kernel before it
// (griddepcontrol.wait): the profiler puts it in a captured step's graph in
// place of the kernels it leaves out, keeping the graph's dependencies.
const void* wait_only_kernel_symbol();
// fp32/fp16 -> bf16 on the device (weights staged in their stored dtype).
void launch_convert_to_bf16(const void* src, int src_dtype /*0 f32, 1 f16, 2 bf16*/, bf16* dst, int64_t n,
                            cudaStream_t stream);

}  // namespace baton::cuda
