// The backend-ops suite (after llama.cpp's test-backend-ops): every CUDA op
// runs over a grid of shapes against the CPU backend's op (backend/cpu/
// cpu_ops.h, backend/sampler.h) on fresh random inputs, with outputs poisoned
// (NaN) first so an unwritten element fails. One case list
// (backend_ops_cases.cpp) and one comparison helper (compare below); each case
// is its own test named by op and shape, and the suite prints the largest
// error per op and output at the end.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/fp8_kernels.h"
#include "backend/sampling_params.h"
#include "cuda_test_util.h"
#include "kv/kv_layout.h"

namespace baton {
class ThreadPool;
struct PagedAttentionArgs;
}  // namespace baton

namespace baton::cuda::ops {

// Tolerances, by the output's dtype (METHOD.md: bf16 operands land between
// 1e-3 and 1e-2 of relative L2 error; fp32 arithmetic on bf16-exact inputs far
// under 1e-3).
constexpr double kTolBf16 = 1e-2;       // bf16 outputs: relative L2
constexpr double kTolF32 = 1e-4;        // fp32 outputs of bf16 inputs: relative L2
constexpr double kTolRouteW = 1e-5;     // MoE routing weights (fp32 softmax): relative L2
constexpr double kTolFp8Linear = 2e-2;  // FP8 linear outputs (bf16): relative L2
constexpr double kTolLogprob = 1e-4;    // sampling logprobs: max absolute difference
constexpr double kExact = 0.0;          // ids, counts, gathers: the fraction that differs
// bf16 values rounded from fp32 sums taken in another order (a norm's sum of
// squares, a GEMV's dot products): a rare element one bf16 step (2^-8
// relative) off.
constexpr double kTolBf16Step = 1e-3;

// One compared output of one case: err against tol (err <= tol passes).
struct Check {
  std::string output;  // "out", "residual", "cache", "tokens", ...
  double err = 0.0;
  double tol = 0.0;
  std::string metric;  // "rel_l2", "max_abs", "mismatch"
};

// The comparison helper: relative L2 error (NaN or a size mismatch: +inf).
Check compare(const std::string& output, const std::vector<float>& out, const std::vector<float>& ref, double tol);
// Fraction of elements that differ (exact outputs: ids, offsets, tokens).
template <typename T>
Check compare_exact(const std::string& output, const std::vector<T>& out, const std::vector<T>& ref,
                    double tol = kExact) {
  size_t bad = out.size() == ref.size() ? 0 : std::max(out.size(), ref.size());
  for (size_t i = 0; i < std::min(out.size(), ref.size()); ++i) bad += !(out[i] == ref[i]);
  const double n = static_cast<double>(std::max<size_t>(1, std::max(out.size(), ref.size())));
  return Check{output, bad / n, tol, "mismatch"};
}
// Largest absolute difference (logprobs).
Check compare_max_abs(const std::string& output, const std::vector<float>& out, const std::vector<float>& ref,
                      double tol);

// A case: op and shape name it; run() launches the op and the CPU reference
// on inputs drawn from rng and returns the compared outputs.
struct OpCase {
  std::string op;
  std::string shape;
  std::function<std::vector<Check>(std::mt19937& rng)> run;
};

// A case of `op` at `shape` that runs run(s, rng).
template <typename Shape, typename Run>
OpCase make_case(std::string op, std::string shape, Shape s, Run run) {
  return OpCase{std::move(op), std::move(shape), [s, run](std::mt19937& rng) { return run(s, rng); }};
}

// ---- the ops' shapes (each family's runner lives in backend_ops_<family>.cpp)

struct AttnShape {
  int num_heads = 8, num_kv_heads = 8, head_dim = 128, block_size = 16;
  std::vector<int> q_lens, ctx_lens;  // per sequence: new tokens, cached tokens before them
  bool decode = false;                // q_lens all 1: the split-context decode kernel
  int split_len = 128;                // decode only
  bool fp8 = false;                   // an e4m3 cache (--kv-cache-dtype fp8), the CPU reading the same bytes
};
OpCase attention_case(const AttnShape& s);

struct RowsShape {
  int rows = 1, cols = 1;
};
OpCase embedding_case(RowsShape s);
OpCase add_rmsnorm_case(RowsShape s);
OpCase silu_mul_case(RowsShape s);
OpCase fill_convert_case(RowsShape s);

struct RopeShape {
  int num_heads = 8, num_kv_heads = 2, head_dim = 64, tokens = 21, block_size = 16;
  bool qwen3 = false;                 // q/k RMSNorm, no bias, plain RoPE; else bias and llama3 scaling
  bool fp8 = false;                   // writes an e4m3 cache (--kv-cache-dtype fp8)
  bool rotation_before_wait = false;  // QkvRopeArgs::rotation_before_wait
};
OpCase qkv_rope_cache_case(const RopeShape& s);

struct GemmShape {
  int m = 1, n = 1, k = 1;
};
OpCase gemm_case(GemmShape s);
OpCase gemv_case(GemmShape s);
OpCase gemv_silu_mul_case(GemmShape s);  // s.n outputs, 2 s.n weight rows
OpCase gemm_row_invariant_case(GemmShape s);
// One Gemm object over several m in turn: algorithm choices reused per bucket of m.
OpCase gemm_buckets_case(std::vector<int> ms, int n, int k);
// FP8 (backend_ops_fp8.cpp): the activations' per-token-group quantiser
// (rows x cols), and the FP8 linear at m x n x k with its weight's scales in
// 128-row blocks (scale_rows 128) or per row (1); m picks the path (GEMV up
// to 8 rows; then cuBLASLt's W8A8 for 128-row blocks and k % 128 == 0, else
// the dequantising fallback).
OpCase fp8_quantize_case(RowsShape s);
// The norm (with an add and a bias) and the SwiGLU that quantise their own
// output (rows x cols, cols a multiple of 128), against their bf16 forms
// followed by the quantiser.
OpCase fp8_quantizing_norm_case(RowsShape s);
OpCase fp8_quantizing_silu_mul_case(RowsShape s);
OpCase fp8_linear_case(GemmShape s, int scale_rows);
OpCase fp8_gemv_silu_mul_case(GemmShape s, int scale_rows);
// The GEMV's fused forms (backend_ops_fused.cpp), over bf16 weights or e4m3
// (fp8: scales in 128-row blocks): norm-in (gated: the SwiGLU form, s.n
// outputs from 2 s.n rows) and residual-add (with or without a bias).
OpCase gemv_norm_in_case(GemmShape s, bool gated, bool fp8);
OpCase gemv_residual_add_case(GemmShape s, bool bias, bool fp8);
// A random weight quantised by the CPU codec in 128x128 blocks, on the
// device in the layout fp8_kernels.h names (scale_rows 128, or 1: every row
// its block's scales), x [m, k] random, and the weight dequantised.
struct Fp8Inputs {
  std::vector<float> x, w_deq;
  DeviceBuffer dx, bits, scales;
  Fp8Weight w;
};
Fp8Inputs fp8_inputs(GemmShape s, int scale_rows, std::mt19937& rng);

struct MoeShape {
  int tokens = 1, experts = 8, top_k = 2, hidden = 64, inter = 32;
  bool renorm = false;
};
OpCase moe_topk_case(const MoeShape& s);
// local > 0: an expert-parallel rank's sort over experts [begin, begin + local).
OpCase moe_align_case(const MoeShape& s, int begin = 0, int local = 0);
OpCase moe_route_case(const MoeShape& s, int begin = 0, int local = 0);
// tokens <= 8; norm_in: with the post-attention norm (launch_moe_norm_router_route).
OpCase moe_router_route_case(const MoeShape& s, int begin = 0, int local = 0, bool norm_in = false,
                             bool one_token_cluster = true);
OpCase moe_combine_norm_case(const MoeShape& s, int begin = 0, int local = 0, bool shared = false);
OpCase grouped_gemm_case(const MoeShape& s);
// tile_n 128 or 256; gather: A through a_rows (gate/up), else in sorted order
// (down); gated: the SwiGLU fused (C = silu(gate) * up).
OpCase grouped_gemm_wgmma_case(const MoeShape& s, int tile_n, bool gather, bool gated);
OpCase moe_experts_case(const MoeShape& s);
OpCase moe_skinny_case(const MoeShape& s);  // tokens <= 8

// MLA (backend_ops_mla.cpp): attention on the latent, prefill and decode.
struct MlaShape {
  int num_heads = 4, kv_lora_rank = 32, rope_dim = 8, block_size = 16;
  std::vector<int> q_lens, ctx_lens;
  bool decode = false;
  int split_len = 0;  // decode: keys per split (0: one split)
};
OpCase mla_attention_case(const MlaShape& s);
// MLA's expanded prefill (backend_ops_mla_prefill.cpp): plan, latent gather,
// kv_b_proj expansion and the 192 / 128 wgmma attention (nope 128, rope 64, v 128).
struct MlaExpandedShape {
  int num_heads = 2, kv_lora_rank = 64, block_size = 16;
  std::vector<int> q_lens, ctx_lens;
};
OpCase mla_expanded_prefill_case(const MlaExpandedShape& s);
// MLA's projections around the attention: the latent row and q LoRA norm
// (mla_prepare), the queries into latent space (mla_q_latent: rope and the
// W_UK batched GEMM), the heads out of it (mla_unabsorb: the W_UV batched
// GEMM) and the W_UK^T split of kv_b (mla_split_uk).
struct MlaProjShape {
  int tokens = 5, num_heads = 4, q_lora_rank = 0, kv_lora_rank = 32, nope = 16, rope_dim = 8, v_dim = 16;
  int block_size = 16;
  bool interleaved = true;
};
OpCase mla_prepare_case(const MlaProjShape& s);
OpCase mla_q_latent_case(const MlaProjShape& s);
OpCase mla_unabsorb_case(const MlaProjShape& s);
OpCase mla_split_uk_case(const MlaProjShape& s);
// DeepSeek-V3 routing.
struct GroupedRouteShape {
  int tokens = 1, experts = 8, top_k = 2, n_group = 2, topk_group = 1;
  bool renorm = true;
  float scaling = 2.5f;
};
OpCase moe_grouped_topk_case(const GroupedRouteShape& s);

struct SampleShape {
  std::string name;  // which filters: greedy, top_k, ...
  SamplingParams params;
  int rows = 64, vocab = 5000;
  // Rows r with r % history_every == 0 get a token history (penalties) and a
  // banned id; 0: no row does (plain rows: the split-vocabulary path).
  int history_every = 1;
};
OpCase sampling_case(const SampleShape& s);

// The case list.
std::vector<OpCase> all_cases();

// ---- helpers shared by the runners

// A paged KV cache of random bf16 values (an fp32 copy for the CPU), or at
// layout.dtype F8_E4M3 of random e4m3 codes (the same bytes for the CPU).
struct PagedCache {
  KvLayout layout;
  std::vector<float> host;
  std::vector<uint8_t> host_fp8;
  DeviceBuffer dev;
  KvDev kv;
  const void* host_cache() const {
    return layout.dtype == DType::kF8E4M3 ? static_cast<const void*>(host_fp8.data()) : host.data();
  }
};
PagedCache make_paged_cache(int layers, int num_kv_heads, int head_dim, int block_size, int num_blocks,
                            std::mt19937& rng, DType dtype = DType::kBF16);
// Any layout (a latent one too): its num_blocks blocks, random.
PagedCache make_paged_cache(const KvLayout& layout, std::mt19937& rng);

// The thread pool the CPU references run on.
ThreadPool& reference_pool();

// The sequences' block tables over a shuffled cache (blocks in random order,
// 3 more than used), with the per-token position and sequence the CPU
// reference needs.
struct Batch {
  std::vector<int32_t> query_start = {0}, seq_lens, block_tables, positions, seq_of_token;
  int max_blocks_per_seq = 0, num_tokens = 0, max_len = 0, total_blocks = 0;
};
Batch make_batch(const std::vector<int>& q_lens, const std::vector<int>& ctx_lens, int block_size, std::mt19937& rng);

// The batch's sequence arrays on the device, and the attention kernels'
// arguments over them (q, out: device pointers).
struct DeviceBatch {
  DeviceBuffer query_start, seq_lens, block_tables;
};
DeviceBatch upload_batch(const Batch& b);
AttnArgs device_attention_args(const DeviceBatch& d, const Batch& b, const PagedCache& cache, int layer, const bf16* q,
                               bf16* out, int num_heads, float scale);

// The CPU reference's arguments for q over the batch's cache (layer `layer`).
PagedAttentionArgs reference_attention_args(const Batch& b, const PagedCache& cache, int layer, const float* q,
                                            int num_heads, float scale);

// "1,37,130" for shape names ("1x40" for 40 equal values).
std::string join(const std::vector<int>& v);

}  // namespace baton::cuda::ops
