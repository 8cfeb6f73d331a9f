#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/mla_prefill.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <utility>

#include "backend/cpu/cpu_ops.h"
#include "backend/model_kv_layout.h"
#include "backend/sampler.h"
#include "common/log.h"
#include "model/dummy_checkpoint.h"

namespace baton::cuda {
namespace {

constexpr int kMaxSplits = 32;
// The most keys (sum of the sequences' lengths) one MLA prefill step expands
// (1 GiB of K_nope/V for DeepSeek-V3's 128 heads); longer steps run absorbed.
constexpr size_t kMlaExpandMaxKeys = 16384;
constexpr int kGraphMaxBatch = 256;
constexpr int kGraphPenaltiesPerSeq = 32;
constexpr size_t kGraphReserveBytes = 512u << 20;  // graphs, cuBLAS, allocator slack

size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

int batch_bucket(int n) {
  static const int kBuckets[] = {1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256};
  for (int b : kBuckets)
    if (n <= b) return b;
  return -1;
}

int pow2_at_least(int n, int lo) {
  int b = lo;
  while (b < n) b <<= 1;
  return b;
}

}  // namespace

CudaBackend::~CudaBackend() {
  if (stream_) cudaSetDevice(options_.device_id);  // the rank's device, from whichever thread ends it
  clear_graphs();
  if (input_host_) cudaFreeHost(input_host_);
  if (output_host_) cudaFreeHost(output_host_);
  if (stream_) cudaStreamDestroy(stream_);
}

Result<std::unique_ptr<CudaBackend>> CudaBackend::create(const Checkpoint& ckpt, const CudaBackendOptions& options,
                                                         const CudaTpRank& rank) {
  std::unique_ptr<CudaBackend> b(new CudaBackend());
  BATON_RETURN_IF_ERROR(b->set_rank(ckpt.config(), rank));
  BATON_RETURN_IF_ERROR(b->init_common(options));
  if (std::optional<uint64_t> seed = dummy_checkpoint_seed(ckpt)) {
    // --load-format dummy: random weights made on the device (this rank's slice), nothing uploaded.
    BATON_ASSIGN_OR_RETURN(b->weights_, CudaWeights::random(b->model_config_, b->shard_, *seed, b->stream_));
  } else {
    BATON_ASSIGN_OR_RETURN(b->weights_, CudaWeights::load(ckpt, b->shard_, b->stream_, &b->load_gbps_));
  }
  BATON_RETURN_IF_ERROR(b->init_common(options));
  return b;
}

Result<std::unique_ptr<CudaBackend>> CudaBackend::create_random(const ModelConfig& config,
                                                                const CudaBackendOptions& options, uint64_t seed,
                                                                const CudaTpRank& rank) {
  std::unique_ptr<CudaBackend> b(new CudaBackend());
  BATON_RETURN_IF_ERROR(b->set_rank(config, rank));
  BATON_RETURN_IF_ERROR(b->init_common(options));
  BATON_ASSIGN_OR_RETURN(b->weights_, CudaWeights::random(config, b->shard_, seed, b->stream_));
  BATON_RETURN_IF_ERROR(b->init_common(options));
  return b;
}

// Called twice: before the weights (device, stream, checks) and after them
// (workspace and the KV budget).
Status CudaBackend::init_common(const CudaBackendOptions& options) {
  const ModelConfig& c = config_;
  if (stream_ == nullptr) {
    options_ = options;
    if (!(options.gpu_memory_utilization > 0.0 && options.gpu_memory_utilization <= 1.0))
      return invalid_argument("gpu_memory_utilization must be in (0, 1], got {}", options.gpu_memory_utilization);
    int count = 0;
    BATON_CUDA_RETURN(cudaGetDeviceCount(&count));
    if (options.device_id < 0 || options.device_id >= count)
      return invalid_argument("CUDA device {} does not exist ({} devices)", options.device_id, count);
    BATON_CUDA_RETURN(cudaSetDevice(options.device_id));
    cudaDeviceProp prop;
    BATON_CUDA_RETURN(cudaGetDeviceProperties(&prop, options.device_id));
    if (prop.major != 9)
      return unimplemented("the CUDA backend is built for sm_90a (Hopper); device {} is sm_{}{}", prop.name, prop.major,
                           prop.minor);
    device_name_ = prop.name;
    num_sms_ = prop.multiProcessorCount;
    BATON_RETURN_IF_ERROR(check_model_shapes());
    BATON_CUDA_RETURN(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    if (comm_ != nullptr) comm_->set_stream(stream_);
    return Status::ok();
  }
  BATON_RETURN_IF_ERROR(gemm_.init());
  gemm_.set_row_invariant(options_.batch_invariant);
  if (!weights_.layers.empty() && weights_.layers[0].o_proj_f8.present()) {
    const int max_k = std::max({c.hidden_size, c.q_size(), c.intermediate_size});
    // Batch-invariant mode (the row-invariant bf16 GEMM) and W8A16 only run
    // every FP8 weight past the GEMV's rows dequantised.
    const bool all_dequantised = options_.batch_invariant || !options_.fp8_w8a8;
    const int64_t scratch = all_dequantised ? weights_.max_fp8_elems() : weights_.max_fp8_fallback_elems();
    BATON_RETURN_IF_ERROR(fp8_gemm_.init(options_.max_num_tokens, max_k, scratch, weights_.max_fp8_elems(), &gemm_));
    fp8_gemm_.set_row_invariant(options_.batch_invariant);
    fp8_gemm_.set_w8a8(options_.fp8_w8a8);
  }
  std::vector<float> inv = rope_inv_freq(c.head_dim, c.rope_theta, c.rope_scaling);
  BATON_RETURN_IF_ERROR(inv_freq_.allocate(inv.size() * sizeof(float)));
  BATON_CUDA_RETURN(cudaMemcpy(inv_freq_.get(), inv.data(), inv.size() * sizeof(float), cudaMemcpyHostToDevice));

  const size_t tm = options_.max_num_tokens, sm = options_.max_num_samples;
  const size_t h = c.hidden_size, q = c.q_size(), kv = c.kv_size(), vocab = c.vocab_size;
  size_t inter = 0;
  bool any_dense = false;
  for (int i = 0; i < c.num_layers; ++i) any_dense |= !c.is_moe_layer(i);
  if (any_dense) inter = c.intermediate_size;
  const size_t e = c.num_experts, k = std::max(1, c.num_experts_per_tok), mi = c.moe_intermediate_size;
  struct Alloc {
    DeviceBuffer* buf;
    size_t bytes;
  };
  attn_partial_floats_ = sm * c.num_heads * kMaxSplits * (c.head_dim + 2);
  std::vector<Alloc> allocs = {{&residual_, tm * h * 4},
                               {&normed_, tm * h * 2},
                               {&qkv_, tm * (q + 2 * kv) * 2},
                               {&q_, tm * q * 2},
                               {&attn_, tm * q * 2},
                               {&proj_, tm * h * 2},
                               {&gate_up_, tm * 2 * inter * 2},
                               {&act_, tm * inter * 2},
                               {&attn_partial_, attn_partial_floats_ * 4},
                               {&final_normed_, sm * h * 2},
                               {&logits_, sm * vocab * 4},
                               {&rank_logits_, comm_ != nullptr ? sm * vocab_rows_ * 4 : 0},
                               {&gathered_logits_, comm_ != nullptr ? shard_.world_size * sm * vocab_rows_ * 4 : 0},
                               {&sample_work_, sm * vocab * 4},
                               {&sample_out_, sm * (2 + 2 * kMaxTopLogprobs) * 4}};
  if (c.is_mla()) {
    const MlaConfig& m = c.mla;
    const size_t nh = c.num_heads, latent = m.latent_dim(), rank = m.kv_lora_rank;
    const size_t q_cols = m.q_lora_rank > 0 ? m.q_lora_rank : nh * m.qk_head_dim();
    // qkv_ holds the fused q/latent projection, q_ the per-head queries, attn_ the heads' outputs.
    allocs[2] = {&qkv_, tm * (q_cols + latent) * 2};
    allocs[3] = {&q_, tm * nh * m.qk_head_dim() * 2};
    allocs[4] = {&attn_, tm * nh * m.v_head_dim * 2};
    if (m.q_lora_rank > 0) allocs.push_back({&q_a_, tm * q_cols * 2});
    allocs.push_back({&q_latent_, tm * nh * latent * 2});
    allocs.push_back({&o_latent_, tm * nh * rank * 2});
    mla_partial_rows_ = std::max<size_t>(2 * sm, 512) * nh;
    allocs.push_back({&mla_partial_, mla_partial_rows_ * (rank + 2) * 4});
    if (m.q_lora_rank > 0 && mla_expanded_supports(m.qk_nope_head_dim, m.qk_rope_head_dim, m.v_head_dim)) {
      mla_expand_keys_ = static_cast<int64_t>(std::min<size_t>(2 * tm, kMlaExpandMaxKeys));
      const size_t keys = mla_expand_keys_, seqs = tm;  // a sequence has at least one token
      allocs.push_back({&mla_latent_rows_, keys * latent * 2});
      allocs.push_back({&mla_kv_exp_, keys * nh * (m.qk_nope_head_dim + m.v_head_dim) * 2});
      allocs.push_back({&mla_plan_, size_t{4} * mla_expanded_plan_ints(static_cast<int>(tm), static_cast<int>(seqs))});
    }
    allocs[8] = {&attn_partial_, 16};
  }
  if (c.arch == Arch::kDeepseekV3 && c.is_moe() && c.deepseek_moe.n_shared_experts > 0) {
    const size_t si = mi * c.deepseek_moe.n_shared_experts;
    allocs.push_back({&shared_gu_, tm * 2 * si * 2});
    allocs.push_back({&shared_act_, tm * si * 2});
    allocs.push_back({&shared_out_, tm * h * 2});
  }
  if (c.is_moe()) {
    allocs.push_back({&router_, tm * e * 4});
    allocs.push_back({&topk_ids_, tm * k * 4});
    allocs.push_back({&topk_w_, tm * k * 4});
    allocs.push_back({&moe_offsets_, (e + 1) * 4});
    allocs.push_back({&moe_route_count_, 4});
    allocs.push_back({&sorted_slots_, tm * k * 4});
    allocs.push_back({&slot_pos_, tm * k * 4});
    allocs.push_back({&moe_runs_, tm * k * 4});
    allocs.push_back({&moe_gu_, tm * k * 2 * mi * 2});
    allocs.push_back({&moe_act_, tm * k * mi * 2});
    allocs.push_back({&moe_out_, tm * k * h * 2});
  }
  size_t ws = 0;
  for (const Alloc& a : allocs) {
    Status st = a.buf->allocate(a.bytes);
    if (!st.is_ok())
      return resource_exhausted(
          "the step workspace for {} tokens does not fit on the GPU after {:.2f} GiB of weights: {}", tm,
          weights_.num_bytes() / 1073741824.0, st.message());
    ws += a.bytes;
  }
  if (moe_route_count_.bytes() > 0) {  // launch_moe_router_route's: zero between launches
    BATON_CUDA_RETURN(cudaMemset(moe_route_count_.get(), 0, moe_route_count_.bytes()));
    moe_router_cluster_ = moe_router_cluster_fits(config_.hidden_size, true) &&
                          moe_router_cluster_fits(config_.hidden_size, false);
    if (!moe_router_cluster_)
      BATON_LOG_INFO("cuda backend on {}: one token's MoE router runs a block an expert (its cluster does not fit)",
                     device_name_);
  }
  BATON_CUDA_RETURN(cudaHostAlloc(&output_host_, sample_out_.bytes(), cudaHostAllocDefault));
  BATON_RETURN_IF_ERROR(ensure_input_capacity(1 << 20));

  size_t free_b = 0, total_b = 0;
  BATON_CUDA_RETURN(cudaMemGetInfo(&free_b, &total_b));
  const double budget = options_.gpu_memory_utilization * static_cast<double>(total_b) -
                        static_cast<double>(total_b - free_b) - static_cast<double>(kGraphReserveBytes);
  const size_t min_kv = kv_block_bytes(16) * 16;
  if (budget < static_cast<double>(min_kv))
    return resource_exhausted(
        "model does not fit: {:.2f} GiB of weights and {:.2f} GiB of step workspace leave no room for the KV "
        "cache within gpu_memory_utilization {} of {} ({:.2f} GiB, {:.2f} GiB in use)",
        weights_.num_bytes() / 1073741824.0, ws / 1073741824.0, options_.gpu_memory_utilization, device_name_,
        total_b / 1073741824.0, (total_b - free_b) / 1073741824.0);
  available_kv_bytes_ = static_cast<size_t>(budget);
  BATON_LOG_INFO("cuda backend on {}: weights {:.2f} GiB, workspace {:.2f} GiB, KV budget {:.2f} GiB", device_name_,
                 weights_.num_bytes() / 1073741824.0, ws / 1073741824.0, available_kv_bytes_ / 1073741824.0);
  return Status::ok();
}

size_t CudaBackend::kv_block_bytes(int block_size) const {
  KvLayout l = model_kv_layout(config_, options_.kv_dtype);
  l.block_size = block_size;
  return l.block_bytes();
}

Status CudaBackend::init_kv_cache(int num_blocks, int block_size) {
  if (num_blocks <= 0 || block_size <= 0)
    return invalid_argument("KV cache needs positive num_blocks and block_size, got {} and {}", num_blocks, block_size);
  BATON_CUDA_RETURN(cudaSetDevice(options_.device_id));
  layout_ = model_kv_layout(config_, options_.kv_dtype);
  layout_.block_size = block_size;
  layout_.num_blocks = num_blocks;
  Status st = kv_.allocate(layout_.total_bytes());
  if (!st.is_ok())
    return resource_exhausted("KV cache of {} blocks ({:.2f} GiB) does not fit on the GPU: {}", num_blocks,
                              layout_.total_bytes() / 1073741824.0, st.message());
  BATON_CUDA_RETURN(cudaMemsetAsync(kv_.get(), 0, kv_.bytes(), stream_));
  BATON_CUDA_RETURN(cudaStreamSynchronize(stream_));
  clear_graphs();
  return Status::ok();
}

void CudaBackend::clear_graphs() {
  for (auto& [key, g] : graphs_) {
    cudaGraphExecDestroy(g.exec);
    cudaGraphDestroy(g.graph);
  }
  graphs_.clear();
}

cudaGraph_t CudaBackend::decode_graph(int num_seqs, int max_blocks_per_seq) const {
  auto it = graphs_.find({batch_bucket(num_seqs), pow2_at_least(max_blocks_per_seq, 16)});
  return it == graphs_.end() ? nullptr : it->second.graph;
}

KvMemory CudaBackend::kv_memory() {
  KvMemory m;
  m.base = kv_.get();
  m.layout = layout_;
  m.on_device = true;
  m.device_id = options_.device_id;
  return m;
}

Status CudaBackend::ensure_input_capacity(size_t bytes) {
  if (bytes <= input_capacity_) return Status::ok();
  size_t cap = std::max(bytes, input_capacity_ * 2);
  if (input_host_) cudaFreeHost(input_host_);
  input_host_ = nullptr;
  BATON_CUDA_RETURN(cudaHostAlloc(&input_host_, cap, cudaHostAllocDefault));
  BATON_RETURN_IF_ERROR(input_dev_.allocate(cap));
  input_capacity_ = cap;
  clear_graphs();  // they point at the old buffer
  return Status::ok();
}

int CudaBackend::attention_rows_per_item() const {
  return config_.is_mla() ? mla_rows_per_tile() : attention_rows_per_tile();
}

int CudaBackend::attention_rows_per_token() const {
  return config_.is_mla() ? config_.num_heads : config_.num_heads / config_.num_kv_heads;
}

int CudaBackend::count_work_items(const StepInput& in) const {
  const int per_token = attention_rows_per_token(), rpt = attention_rows_per_item();
  int items = 0;
  for (int i = 0; i < in.num_seqs(); ++i)
    items += ((in.query_start[i + 1] - in.query_start[i]) * per_token + rpt - 1) / rpt;
  return items;
}

void CudaBackend::choose_decode_split(int seqs, int ctx_cap, Launch* l) const {
  // Blocks per split of the context: one per KV head per sequence, or for MLA
  // one per tile of heads; enough splits for 8 blocks per SM (MLA: 2, its
  // blocks fill an SM), within the partials' buffer.
  int max_splits = kMaxSplits, per_split = seqs * config_.num_kv_heads, per_sm = 8;
  if (config_.is_mla()) {
    const int rpt = mla_rows_per_tile();
    per_split = seqs * ((config_.num_heads + rpt - 1) / rpt);
    per_sm = 2;
    max_splits = std::max<int>(1, std::min<size_t>(kMaxSplits, mla_partial_rows_ / (size_t(seqs) * config_.num_heads)));
  }
  const int want = std::max(1, (per_sm * num_sms_ + per_split - 1) / per_split);
  l->split_len = std::max<int>(align_up((ctx_cap + want - 1) / want, 64),
                               align_up((ctx_cap + max_splits - 1) / max_splits, 64));
  l->max_splits = (ctx_cap + l->split_len - 1) / l->split_len;
}

Status CudaBackend::check_model_shapes() const {
  const ModelConfig& c = config_;
  if (c.hidden_size % 8 != 0 || (c.is_moe() && c.moe_intermediate_size % 8 != 0))
    return unimplemented("the CUDA backend needs hidden and MoE intermediate sizes divisible by 8{}",
                         shard_.world_size > 1 ? " (per tensor parallel rank)" : "");
  bool dense = false;
  for (int i = 0; i < c.num_layers; ++i) dense |= !c.is_moe_layer(i);
  if (shard_.world_size > 1 && dense && c.intermediate_size % 8 != 0)
    return unimplemented(
        "the CUDA backend needs each tensor parallel rank's intermediate size divisible by 8 (its GEMMs' rows are "
        "16-byte aligned); {} ranks leave {} of the model's {}",
        shard_.world_size, c.intermediate_size, model_config_.intermediate_size);
  if (options_.kv_dtype != DType::kBF16 && options_.kv_dtype != DType::kF8E4M3)
    return unimplemented("the CUDA backend's KV cache is BF16 or F8_E4M3, not {}", dtype_name(options_.kv_dtype));
  if (c.is_mla() && options_.kv_dtype != DType::kBF16)
    return unimplemented(
        "--kv-cache-dtype fp8 does not cover MLA (deepseek_v3's latent cache) on the CUDA backend yet; use "
        "--kv-cache-dtype auto (BF16) for this model, or the CPU backend");
  if (c.is_mla()) {
    const MlaConfig& m = c.mla;
    if (!mla_attention_supports(m.kv_lora_rank, m.qk_rope_head_dim))
      return unimplemented(
          "the CUDA backend's MLA kernel is built for kv_lora_rank 512 with qk_rope_head_dim 64 (DeepSeek-V3) and 32 "
          "with 8; the model has {} and {}",
          m.kv_lora_rank, m.qk_rope_head_dim);
    if (m.qk_nope_head_dim % 8 != 0 || m.v_head_dim % 8 != 0 || (m.q_lora_rank > 0 && m.q_lora_rank % 8 != 0))
      return unimplemented("the CUDA backend needs MLA head dims and q_lora_rank divisible by 8");
    if (options_.batch_invariant)
      return unimplemented("batch-invariant mode does not cover MLA (its per-head projections are batched GEMMs)");
    return Status::ok();
  }
  const int hd = c.head_dim;
  if (hd != 16 && hd != 32 && hd != 64 && hd != 128)
    return unimplemented("the CUDA backend supports head_dim 16, 32, 64, 128; the model has {}", hd);
  if (c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0 || c.num_heads / c.num_kv_heads > 16)
    return unimplemented("the CUDA backend needs num_heads a multiple of num_kv_heads, group <= 16 ({} / {})",
                         c.num_heads, c.num_kv_heads);
  return Status::ok();
}

void CudaBackend::forward(const Launch& l) {
  const ModelConfig& c = config_;
  const Layout& lay = l.lay;
  char* dev = static_cast<char*>(input_dev_.get());
  const auto* tok = reinterpret_cast<const int32_t*>(dev + lay.token_ids);
  const int t = lay.num_tokens, h = c.hidden_size, vocab = c.vocab_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  // A rank of several looks up its vocabulary slice (pack() maps other ids to its zero row).
  launch_embedding(tok, weights_.embed, residual_.as<float>(), t, h, vocab_rows_ + (shard_.world_size > 1 ? 1 : 0),
                   stream_);
  all_reduce_residual(t);
  const bool proj_pending = run_layers(l);
  const auto* rows = reinterpret_cast<const int32_t*>(dev + lay.sample_rows);
  const int ns = lay.num_samples;
  if (ns == 0) return;
  launch_add_rmsnorm(residual_.as<float>(), proj_pending ? proj_.as<bf16>() : nullptr, nullptr, weights_.final_norm,
                     final_normed_.as<bf16>(), rows, ns, h, eps, stream_);
  if (comm_ == nullptr) {
    gemm_.run(final_normed_.as<bf16>(), weights_.lm_head, logits_.get(), ns, vocab, h, true, stream_);  // [ns, vocab]
  } else {
    gemm_.run(final_normed_.as<bf16>(), weights_.lm_head, rank_logits_.get(), ns, vocab_rows_, h, true, stream_);
    gather_logits(ns);
  }
  if (!l.sample || shard_.rank != 0) return;  // rank 0 samples for the instance
  const size_t sm = options_.max_num_samples;
  SampleOutputs out;
  out.tokens = sample_out_.as<int32_t>();
  out.logprobs = sample_out_.as<float>() + sm;
  out.top_ids = sample_out_.as<int32_t>() + 2 * sm;
  out.top_logprobs = sample_out_.as<float>() + (2 + kMaxTopLogprobs) * sm;
  launch_sample(logits_.as<float>(), sample_work_.as<float>(), ns, vocab,
                reinterpret_cast<const SampleRowParams*>(dev + lay.params),
                reinterpret_cast<const PenaltyToken*>(dev + lay.penalties), out, stream_);
}

Status CudaBackend::queue_readback(const StepInput& in, const Launch& l, std::vector<int> sample_of_row) {
  BATON_RETURN_IF_ERROR(std::exchange(comm_status_, Status::ok()));
  if (!in.samples.empty() && shard_.rank == 0) {
    BATON_CUDA_RETURN(
        cudaMemcpyAsync(output_host_, sample_out_.get(), sample_out_.bytes(), cudaMemcpyDeviceToHost, stream_));
  }
  if (in.return_logits && !in.samples.empty() && shard_.rank == 0) {
    host_logits_.resize(static_cast<size_t>(l.lay.num_samples) * config_.vocab_size);
    BATON_CUDA_RETURN(
        cudaMemcpyAsync(host_logits_.data(), logits_.get(), host_logits_.size() * 4, cudaMemcpyDeviceToHost, stream_));
  }
  pending_ = Pending{&in, l, std::move(sample_of_row)};
  return Status::ok();
}

Result<StepOutput> CudaBackend::collect(const Pending& p) {
  const StepInput& in = *p.in;
  const std::vector<int>& sample_of_row = p.sample_of_row;
  const size_t sm = options_.max_num_samples;
  StepOutput out;
  const int vocab = config_.vocab_size;
  BATON_RETURN_IF_ERROR(sync_stream());
  BATON_CUDA_RETURN(cudaGetLastError());
  if (in.samples.empty() || shard_.rank != 0) return out;
  const auto* tokens = static_cast<const int32_t*>(output_host_);
  const auto* logprobs = static_cast<const float*>(output_host_) + sm;
  const auto* top_ids = static_cast<const int32_t*>(output_host_) + 2 * sm;
  const auto* top_lp = static_cast<const float*>(output_host_) + (2 + kMaxTopLogprobs) * sm;
  std::vector<int> row_of_sample(in.samples.size(), -1);
  for (size_t r = 0; r < sample_of_row.size(); ++r)
    if (sample_of_row[r] >= 0) row_of_sample[sample_of_row[r]] = static_cast<int>(r);
  out.samples.resize(in.samples.size());
  if (in.return_logits) out.logits.resize(in.samples.size() * static_cast<size_t>(vocab));
  for (size_t i = 0; i < in.samples.size(); ++i) {
    const int r = row_of_sample[i];
    if (tokens[r] < 0)
      return invalid_argument("sampling sequence {}: every token of the vocabulary is banned", in.samples[i].seq_index);
    SampleResult& s = out.samples[i];
    s.token_id = tokens[r];
    s.logprob = logprobs[r];
    const int nlp = std::min(in.samples[i].params->num_logprobs, std::min(kMaxTopLogprobs, vocab));
    for (int j = 0; j < nlp; ++j)
      s.top_logprobs.emplace_back(top_ids[r * kMaxTopLogprobs + j], top_lp[r * kMaxTopLogprobs + j]);
    if (in.return_logits)
      std::memcpy(out.logits.data() + i * vocab, host_logits_.data() + static_cast<size_t>(r) * vocab, 4 * vocab);
  }
  return out;
}

Result<StepOutput> CudaBackend::execute(const StepInput& in) {
  BATON_RETURN_IF_ERROR(submit(in));
  return wait();
}

Status CudaBackend::submit(const StepInput& in) {
  BATON_CHECK(!pending_.has_value(), "CudaBackend::submit() while a step is pending");
  Status st = launch(in);
  if (!st.is_ok()) pending_.reset();
  return st;
}

Result<StepOutput> CudaBackend::wait() {
  BATON_CHECK(pending_.has_value(), "CudaBackend::wait() without submit()");
  Pending p = std::move(*pending_);
  pending_.reset();
  return collect(p);
}

Status CudaBackend::launch(const StepInput& in) {
  BATON_RETURN_IF_ERROR(validate(in));
  BATON_CUDA_RETURN(cudaSetDevice(options_.device_id));  // this thread may not have run the rank before
  const int n = in.num_tokens(), s = in.num_seqs();
  const bool decode_only = n == s;
  for (const SampleRequest& r : in.samples)
    if (r.params->num_logprobs > kMaxTopLogprobs)
      return invalid_argument("num_logprobs {} is above the CUDA backend's {}", r.params->num_logprobs,
                              kMaxTopLogprobs);
  Launch l;
  l.decode_only = decode_only && s <= options_.max_num_samples && !options_.batch_invariant;
  const int bucket = batch_bucket(s);
  const bool graphs = options_.use_cuda_graphs && (comm_ == nullptr || comm_->capturable());
  if (graphs && l.decode_only && bucket > 0 && bucket <= kGraphMaxBatch && !in.return_logits) {
    const int mbps_b = pow2_at_least(in.max_blocks_per_seq, 16);
    l.lay = make_layout(bucket, bucket, mbps_b, bucket, 0, bucket * kGraphPenaltiesPerSeq);
    std::vector<int> sample_of_row(bucket, -1);
    for (size_t i = 0; i < in.samples.size(); ++i) sample_of_row[in.samples[i].seq_index] = static_cast<int>(i);
    BATON_RETURN_IF_ERROR(ensure_input_capacity(l.lay.bytes));
    if (pack(in, l.lay, true, sample_of_row)) {
      choose_decode_split(bucket, mbps_b * layout_.block_size, &l);
      BATON_CUDA_RETURN(cudaMemcpyAsync(input_dev_.get(), input_host_, l.lay.bytes, cudaMemcpyHostToDevice, stream_));
      auto key = std::make_pair(bucket, mbps_b);
      auto it = graphs_.find(key);
      if (it == graphs_.end()) {
        // One eager run first (its result is discarded: the graph recomputes
        // the same step) so GEMM plans are tuned outside the capture.
        forward(l);
        cudaGraph_t graph;
        BATON_CUDA_RETURN(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
        forward(l);
        BATON_CUDA_RETURN(cudaStreamEndCapture(stream_, &graph));
        cudaGraphExec_t exec;
        cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
        if (err != cudaSuccess) cudaGraphDestroy(graph);
        BATON_CUDA_RETURN(err);
        it = graphs_.emplace(key, DecodeGraph{graph, exec}).first;
      }
      BATON_CUDA_RETURN(cudaGraphLaunch(it->second.exec, stream_));
      return queue_readback(in, l, std::move(sample_of_row));
    }
  }
  // Eager path.
  const int items = l.decode_only ? 0 : count_work_items(in);
  int pens = 0;
  for (const SampleRequest& r : in.samples) {
    pens += static_cast<int>(r.banned_token_ids.size() + r.params->logit_bias.size());
    if (r.params->repetition_penalty != 1.0f) {
      if (r.prompt_ids) pens += static_cast<int>(r.prompt_ids->size());
      if (r.output_ids) pens += static_cast<int>(r.output_ids->size());
    }
    if (r.params->presence_penalty != 0.0f || r.params->frequency_penalty != 0.0f)
      if (r.output_ids) pens += static_cast<int>(r.output_ids->size());
  }
  const int ns = static_cast<int>(in.samples.size());
  l.lay = make_layout(n, s, in.max_blocks_per_seq, ns, items, pens);
  for (int i = 0; i < s; ++i) l.total_keys += in.seq_lens[i];
  std::vector<int> sample_of_row(ns);
  for (int i = 0; i < ns; ++i) sample_of_row[i] = i;
  BATON_RETURN_IF_ERROR(ensure_input_capacity(l.lay.bytes));
  BATON_CHECK(pack(in, l.lay, false, sample_of_row), "penalty list sized exactly");
  if (l.decode_only) choose_decode_split(s, in.max_blocks_per_seq * layout_.block_size, &l);
  BATON_CUDA_RETURN(cudaMemcpyAsync(input_dev_.get(), input_host_, l.lay.bytes, cudaMemcpyHostToDevice, stream_));
  forward(l);
  return queue_readback(in, l, std::move(sample_of_row));
}

Result<std::vector<float>> CudaBackend::forward_all_logits(const StepInput& in) {
  BATON_RETURN_IF_ERROR(validate(in));
  BATON_CUDA_RETURN(cudaSetDevice(options_.device_id));
  const int n = in.num_tokens(), s = in.num_seqs();
  if (n > options_.max_num_samples)
    return invalid_argument("forward_all_logits: {} tokens is above max_num_samples {}", n, options_.max_num_samples);
  Launch l;
  l.sample = false;
  const int items = count_work_items(in);
  l.lay = make_layout(n, s, in.max_blocks_per_seq, n, items, 0);
  for (int i = 0; i < s; ++i) l.total_keys += in.seq_lens[i];
  BATON_RETURN_IF_ERROR(ensure_input_capacity(l.lay.bytes));
  BATON_CHECK(pack(in, l.lay, false, std::vector<int>(n, -1)), "no penalties");
  auto* rows = reinterpret_cast<int32_t*>(static_cast<char*>(input_host_) + l.lay.sample_rows);
  for (int t = 0; t < n; ++t) rows[t] = t;
  BATON_CUDA_RETURN(cudaMemcpyAsync(input_dev_.get(), input_host_, l.lay.bytes, cudaMemcpyHostToDevice, stream_));
  forward(l);
  BATON_RETURN_IF_ERROR(std::exchange(comm_status_, Status::ok()));
  std::vector<float> logits(static_cast<size_t>(n) * config_.vocab_size);
  BATON_CUDA_RETURN(cudaMemcpyAsync(logits.data(), logits_.get(), logits.size() * 4, cudaMemcpyDeviceToHost, stream_));
  BATON_RETURN_IF_ERROR(sync_stream());
  BATON_CUDA_RETURN(cudaGetLastError());
  return logits;
}

}  // namespace baton::cuda
