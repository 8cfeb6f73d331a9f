// The CUDA backend: the forward pass of llama, qwen2, qwen3, qwen3_moe and
// deepseek_v3 (multi-head latent attention over a latent KV cache, absorbed
// projections; DeepSeekMoE routing) on one NVIDIA GPU (sm_90a) in bf16 with
// fp32 accumulation, over the paged KV cache of kv_layout.h (bf16 or, at
// --kv-cache-dtype fp8, e4m3; one device allocation), sampling on the GPU.
// Decode-only steps replay a CUDA graph captured per (batch bucket, block
// table width bucket); other steps launch eagerly.
// A tensor-parallel rank (CudaTpRank) holds its slice of the weights and KV
// heads (model/tp_shard.h) on its own device and stream: the all-reduces
// after the row-parallel projections and the embedding, and the gather of
// the vocabulary-parallel logits, go through its DeviceCommunicator (inside
// the graphs when it is capturable); rank 0 samples, the others return no
// samples. cuda_tensor_parallel.h joins the ranks into one Backend.
#pragma once

#include <cuda_runtime.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "backend/backend_factory.h"
#include "backend/cuda/cuda_common.h"
#include "backend/cuda/cuda_weights.h"
#include "backend/cuda/device_communicator.h"
#include "backend/cuda/fp8_gemm.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "backend/cuda/sampling.h"
#include "model/checkpoint.h"

namespace baton::cuda {

struct CudaBackendOptions {
  int device_id = 0;
  double gpu_memory_utilization = 0.9;
  int max_num_tokens = 16384;  // the largest step (tokens) the workspace holds
  int max_num_samples = 512;   // the most sampling rows in one step
  bool use_cuda_graphs = true;
  // Batch invariance: a sequence's tokens do not depend on what shares its
  // batch (row-invariant GEMMs, one attention kernel for prefill and decode).
  // Slower; for tests and reproducibility.
  bool batch_invariant = false;
  // FP8 checkpoints: quantise the activations of the FP8 linears per token
  // group (W8A8 through cuBLASLt) where the shapes allow; false: W8A16 only
  // (bf16 activations, as the CPU reference computes). Tests.
  bool fp8_w8a8 = true;
  // The KV cache's element type: BF16, or F8_E4M3 at --kv-cache-dtype fp8
  // (written quantised by the QKV kernel, read by both attention kernels,
  // which convert each K/V tile to bf16 in shared memory; not for MLA yet).
  DType kv_dtype = DType::kBF16;
  // A tensor-parallel rank waits this long for a step's collectives before
  // it aborts the group (a peer failed or stalls; issue 16: within 5 s).
  std::chrono::milliseconds rank_timeout{5000};
  // Tensor-parallel ranks made by make_cuda_tensor_parallel spread the MoE
  // experts whole over the ranks (--enable-expert-parallel; model/tp_shard.h).
  bool enable_expert_parallel = false;
};

// Rank shard.rank of shard.world_size, joined to its peers by `comm` (which
// must outlive the backend). world_size 1 without a communicator: the whole
// model on one GPU. world_size 1 with one: the same model, with every
// collective of the sharded path run through it (tests of the NCCL path).
struct CudaTpRank {
  TpShard shard;
  DeviceCommunicator* comm = nullptr;
};
class CudaBackend final : public Backend {
 public:
  static Result<std::unique_ptr<CudaBackend>> create(const Checkpoint& ckpt, const CudaBackendOptions& options,
                                                     const CudaTpRank& rank = {});
  // Random weights made on the GPU from `config` (benchmarks).
  static Result<std::unique_ptr<CudaBackend>> create_random(const ModelConfig& config,
                                                            const CudaBackendOptions& options, uint64_t seed,
                                                            const CudaTpRank& rank = {});
  ~CudaBackend() override;

  const ModelConfig& model_config() const override { return model_config_; }
  std::string device_name() const override { return device_name_; }
  size_t kv_block_bytes(int block_size) const override;
  size_t available_kv_bytes() const override { return available_kv_bytes_; }
  Status init_kv_cache(int num_blocks, int block_size) override;
  KvMemory kv_memory() override;
  Result<StepOutput> execute(const StepInput& in) override;
  // submit() returns once the step's upload, kernels (or graph) and readback
  // are queued on the stream; wait() synchronises and unpacks the samples.
  Status submit(const StepInput& in) override;
  Result<StepOutput> wait() override;
  bool submit_is_async() const override { return true; }

  // Tests: runs `in` like execute() (writing its K/V) and returns the logits
  // of every token, [num_tokens, vocab] (num_tokens <= max_num_samples).
  Result<std::vector<float>> forward_all_logits(const StepInput& in);

  size_t weight_bytes() const { return weights_.num_bytes(); }
  double weight_load_gbps() const { return load_gbps_; }
  int num_graphs() const { return static_cast<int>(graphs_.size()); }
  // The captured graph a decode step of num_seqs sequences of at most
  // max_blocks_per_seq blocks replays, or null before its first such step
  // (or without CUDA graphs): the profiler times copies of it with kernels
  // left out (tools/gpu_profile/step_kernels.h). Owned by the backend.
  cudaGraph_t decode_graph(int num_seqs, int max_blocks_per_seq) const;
  cudaStream_t stream() const { return stream_; }
  int device_id() const { return options_.device_id; }

 private:
  CudaBackend() = default;
  // Sets the model (config_ the rank's slice of it) and the rank.
  Status set_rank(const ModelConfig& model, const CudaTpRank& rank);
  Status init_common(const CudaBackendOptions& options);
  // Tensor parallelism: the sum over ranks of proj_'s first `tokens` rows,
  // and of residual_'s (after the vocabulary-parallel embedding); the full
  // [rows, vocab] logits from every rank's slice. The first failure is kept
  // in comm_status_ (forward() queues work and returns nothing).
  void all_reduce_proj(int tokens);
  void all_reduce_residual(int tokens);
  void gather_logits(int rows);
  // Waits for the stream; a rank polls its communicator's health meanwhile
  // and aborts the group past options_.rank_timeout.
  Status sync_stream();
  Status validate(const StepInput& in) const;

  // Device-side layout of one step's inputs (one upload).
  struct Layout {
    int num_tokens = 0, num_seqs = 0, mbps = 0, num_samples = 0, num_items = 0, num_penalties = 0;
    size_t token_ids = 0, positions = 0, slots = 0, query_start = 0, seq_lens = 0, block_tables = 0, sample_rows = 0,
           items = 0, params = 0, penalties = 0, bytes = 0;
  };
  static Layout make_layout(int num_tokens, int num_seqs, int mbps, int num_samples, int num_items, int num_penalties);
  Status ensure_input_capacity(size_t bytes);
  // Fills the pinned staging buffer for `in` (padded to `lay`); returns false
  // when a sample's penalty list does not fit lay.num_penalties.
  bool pack(const StepInput& in, const Layout& lay, bool pad_decode, const std::vector<int>& sample_rows);
  struct Launch {
    Layout lay;
    bool decode_only = false;
    int split_len = 0, max_splits = 0;
    bool sample = true;
    int64_t total_keys = 0;  // the sequences' keys (sum of seq_lens): MLA's expanded prefill
  };
  void forward(const Launch& l);
  // The layers of step l (cuda_backend_layers.cpp); true when proj_ holds the
  // last block's output, not yet added into residual_.
  bool run_layers(const Launch& l);
  // Whether a step of t tokens runs its norms and residual adds inside the
  // GEMVs (decode at 1 or 2 tokens on one rank, not batch-invariant, no MLA).
  bool fuses_norms(int t) const;
  // Whether the MoE block's one-launch router runs the post-attention norm too.
  bool moe_norms_in(int t) const;
  // The step's sequences over the paged cache for layer i's attention kernel.
  AttnArgs paged_attention_args(const Launch& l, int i, const KvDev& kv, const bf16* q, bf16* out) const;
  // Where the qkv projection reads its input: normed_; residual_ (its input
  // norm inside the qkv GEMV); the FP8 GEMM's activations the norm quantised.
  enum class QkvInput { kNormed, kNormIn, kQuantized };
  // The attention block of layer i over per-head K/V -> proj_ (after o_proj).
  // o_residual_add: o_proj's output (and bias) added into residual_.
  void attention_block(const Launch& l, int i, const KvDev& kv, QkvInput qkv_in, bool o_residual_add);
  // MLA (cuda_mla_layer.cpp): the attention block of layer i, normed_ -> proj_ (after o_proj).
  void mla_attention(const Launch& l, int i, const KvDev& kv);
  // Whether step l runs MLA prefill in the expanded form, and that form's attention (q_ -> attn_).
  bool mla_expands(const Launch& l) const;
  void mla_prefill_expanded(const Launch& l, int i, const KvDev& kv);
  // The MoE block of layer i, normed_ -> proj_ (routed and shared experts);
  // with next_norm (the next layer's input norm), the combine also adds the
  // block's output into residual_ and leaves normed_ for the next layer;
  // with norm_in (moe_norms_in), the router makes normed_ from residual_.
  void moe_block(int i, int num_tokens, const bf16* next_norm = nullptr, const GemvNormIn* norm_in = nullptr);
  // y = x . W^T through the FP8 GEMM when the projection is held in FP8 (w8), else the bf16 one (w).
  void linear(const bf16* x, const bf16* w, const Fp8Weight& w8, void* y, int m, int n, int k);
  // The dense MLP of layer L, normed_ (or x_quantized: the FP8 GEMM's activations) -> proj_.
  void dense_mlp(const CudaLayerWeights& L, bool x_quantized, int m, int inter, int h);
  // Whether the projection is FP8 and its GEMM takes m rows quantised ahead (Fp8Gemm::takes_quantized).
  bool quantizes_ahead(const Fp8Weight& w8, int m, int n, int k) const;
  // residual_ += add (+ bias), then its rmsnorm times weight into normed_, or
  // (quantized) into the FP8 GEMM's activations for the projection that reads it next.
  void add_rmsnorm(const bf16* add, const bf16* bias, const bf16* weight, bool quantized, int t);
  // The GEMV's fused forms over the projection's weight (bf16 w or e4m3 w8):
  // y = (rmsnorm(in) . w^T) (gated: SwiGLU), and residual_ += x . w^T (+ bias).
  void linear_norm_in(const GemvNormIn& in, const bf16* w, const Fp8Weight& w8, bf16* y, int m, int n, int k,
                      bool gated);
  void linear_residual_add(const bf16* x, const bf16* w, const Fp8Weight& w8, const bf16* bias, int m, int n, int k);
  // Rows per prefill work tile and (token, head) rows per token the attention kernel tiles.
  int attention_rows_per_item() const;
  int attention_rows_per_token() const;
  // Work items for a prefill step's sequences.
  int count_work_items(const StepInput& in) const;
  // The decode split of the context (split_len, max_splits) for `seqs` sequences over ctx_cap keys.
  void choose_decode_split(int seqs, int ctx_cap, Launch* l) const;
  // Checks that the model's shapes run here (init_common).
  Status check_model_shapes() const;
  // The step submitted and not yet waited for.
  struct Pending {
    const StepInput* in = nullptr;
    Launch l;
    std::vector<int> sample_of_row;
  };
  Status launch(const StepInput& in);
  // Queues the samples' (and logits') copy to the host; the step is then pending.
  Status queue_readback(const StepInput& in, const Launch& l, std::vector<int> sample_of_row);
  Result<StepOutput> collect(const Pending& p);
  std::optional<Pending> pending_;

  ModelConfig model_config_;  // the model's
  ModelConfig config_;        // the shapes this rank computes (its slice)
  TpShard shard_;
  DeviceCommunicator* comm_ = nullptr;  // null: one GPU, no collectives
  Status comm_status_;
  int vocab_rows_ = 0;  // LM head rows this rank computes (the vocabulary, or its padded slice)
  CudaBackendOptions options_;
  std::string device_name_;
  int num_sms_ = 0;
  cudaStream_t stream_ = nullptr;
  CudaWeights weights_;
  Gemm gemm_;
  Fp8Gemm fp8_gemm_;  // FP8 checkpoints' dense projections (after gemm_: it runs its fallback)
  double load_gbps_ = 0.0;
  DeviceBuffer inv_freq_;  // [head_dim / 2] fp32
  size_t available_kv_bytes_ = 0;
  KvLayout layout_;
  DeviceBuffer kv_;

  // Workspace for max_num_tokens tokens.
  DeviceBuffer moe_route_count_;     // launch_moe_router_route's block count
  DeviceBuffer moe_runs_;            // launch_moe_router_route's runs (MoeRouting::runs)
  bool moe_router_cluster_ = false;  // one token's router may run as one cluster (moe_router_cluster_fits)
  DeviceBuffer residual_, normed_, qkv_, q_, attn_, proj_, gate_up_, act_, router_, topk_ids_, topk_w_, moe_offsets_,
      sorted_slots_, slot_pos_, moe_gu_, moe_act_, moe_out_, attn_partial_, final_normed_, logits_, sample_work_,
      sample_out_;
  size_t attn_partial_floats_ = 0;
  DeviceBuffer rank_logits_, gathered_logits_;  // tensor parallel: [rows, vocab_rows_], [world, rows, vocab_rows_]
  // MLA: q LoRA output, queries and outputs in latent space, the decode
  // splits' partials; DeepSeekMoE's shared experts.
  DeviceBuffer q_a_, q_latent_, o_latent_, mla_partial_, shared_gu_, shared_act_, shared_out_;
  size_t mla_partial_rows_ = 0;  // (row, split) pairs mla_partial_ holds
  // MLA's expanded prefill: the gathered latent rows, their K_nope/V per head,
  // the plan (key offsets, work items) for up to mla_expand_keys_ keys (0: no expanded form).
  DeviceBuffer mla_latent_rows_, mla_kv_exp_, mla_plan_;
  int64_t mla_expand_keys_ = 0;
  // Step inputs: pinned staging and the device copy.
  DeviceBuffer input_dev_;
  void* input_host_ = nullptr;
  size_t input_capacity_ = 0;
  void* output_host_ = nullptr;  // tokens, logprobs, top ids, top logprobs
  std::vector<float> host_logits_;

  // A decode step's captured graph, kept beside its instance for the
  // profiler (decode_graph).
  struct DecodeGraph {
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
  };
  void clear_graphs();
  std::map<std::pair<int, int>, DecodeGraph> graphs_;  // (batch bucket, mbps bucket)
};

// The factory hook (backend_factory.h): "cuda"; tensor_parallel_size > 1
// through cuda_tensor_parallel.h over NCCL.
Result<std::unique_ptr<Backend>> make_cuda_backend(const Checkpoint& ckpt, const BackendOptions& options);

// Adds "cuda" to the backend factory (make_backend). Called once, at start,
// by the program that links this library (cli/main.cpp).
void register_cuda_backend();

}  // namespace baton::cuda
