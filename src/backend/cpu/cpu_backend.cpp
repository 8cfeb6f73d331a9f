#include "backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <new>

#include "backend/cpu/cpu_ops.h"
#include "backend/model_kv_layout.h"
#include "backend/step_validation.h"
#include "common/check.h"
#include "model/yarn.h"

namespace baton {

Result<std::unique_ptr<CpuBackend>> CpuBackend::create(const Checkpoint& ckpt, const BackendOptions& options) {
  BATON_ASSIGN_OR_RETURN(TpShard whole, TpShard::make(ckpt.config(), 0, 1));
  return create_rank(ckpt, options, CpuTpRank{whole, nullptr});
}

Result<std::unique_ptr<CpuBackend>> CpuBackend::create_rank(const Checkpoint& ckpt, const BackendOptions& options,
                                                            const CpuTpRank& rank) {
  if (options.num_threads < 0) return invalid_argument("num_threads must be >= 0, got {}", options.num_threads);
  if (rank.shard.world_size > 1 && (rank.comm == nullptr || rank.comm->world_size() != rank.shard.world_size ||
                                    rank.comm->rank() != rank.shard.rank))
    return invalid_argument("tensor parallel rank {} of {} needs a communicator of that rank and size", rank.shard.rank,
                            rank.shard.world_size);
  const ModelConfig& c = ckpt.config();
  if (c.rope_scaling.has_value() && c.rope_scaling->rope_type != "llama3" && c.rope_scaling->rope_type != "yarn")
    return unimplemented("rope_scaling type '{}' is not supported (only llama3, yarn)", c.rope_scaling->rope_type);
  auto pool = std::make_unique<ThreadPool>(options.num_threads);
  Result<CpuWeights> weights = [&]() -> Result<CpuWeights> {
    try {
      return CpuWeights::load(ckpt, rank.shard, pool.get());
    } catch (const std::bad_alloc&) {
      return resource_exhausted("out of memory converting the weights of {} to fp32", ckpt.dir());
    }
  }();
  if (!weights.is_ok()) return weights.status().with_context("loading " + ckpt.dir());
  const size_t kv_bytes = options.cpu_kv_cache_bytes > 0 ? options.cpu_kv_cache_bytes : kDefaultKvBytes;
  const DType kv_dtype = resolve_kv_cache_dtype(options.kv_cache_dtype, DType::kF32);
  return std::unique_ptr<CpuBackend>(
      new CpuBackend(c, rank, std::move(weights).value(), std::move(pool), kv_bytes, kv_dtype));
}

CpuBackend::CpuBackend(const ModelConfig& model_config, const CpuTpRank& rank, CpuWeights weights,
                       std::unique_ptr<ThreadPool> pool, size_t kv_budget_bytes, DType kv_dtype)
    : model_config_(model_config),
      config_(rank.shard.rank_config(model_config)),
      shard_(rank.shard),
      comm_(rank.shard.world_size > 1 ? rank.comm : nullptr),
      weights_(std::move(weights)),
      pool_(std::move(pool)),
      inv_freq_(rope_inv_freq(config_.head_dim, config_.rope_theta, config_.rope_scaling)),
      kv_budget_bytes_(kv_budget_bytes) {
  layout_ = model_kv_layout(config_, kv_dtype);
}

size_t CpuBackend::kv_block_bytes(int block_size) const {
  KvLayout l = layout_;
  l.block_size = block_size;
  return l.block_bytes();
}

Status CpuBackend::init_kv_cache(int num_blocks, int block_size) {
  if (num_blocks <= 0) return invalid_argument("num_blocks must be positive, got {}", num_blocks);
  if (block_size <= 0) return invalid_argument("block_size must be positive, got {}", block_size);
  KvLayout l = layout_;
  l.block_size = block_size;
  l.num_blocks = num_blocks;
  const size_t floats = (l.total_bytes() + sizeof(float) - 1) / sizeof(float);
  try {
    kv_.reset(new float[floats]);
  } catch (const std::bad_alloc&) {
    return resource_exhausted("cannot allocate a KV cache of {} blocks ({} bytes)", num_blocks, l.total_bytes());
  }
  layout_ = l;
  return Status::ok();
}

KvMemory CpuBackend::kv_memory() {
  KvMemory m;
  m.base = kv_.get();
  m.layout = layout_;
  m.on_device = false;
  return m;
}

Status CpuBackend::validate(const StepInput& in) const {
  if (kv_ == nullptr) return failed_precondition("execute() before init_kv_cache()");
  const int n = in.num_tokens(), num_seqs = in.num_seqs();
  BATON_RETURN_IF_ERROR(validate_step_shape(in));
  const int bs = layout_.block_size;
  for (int s = 0; s < num_seqs; ++s) {
    const int begin = in.query_start[s], end = in.query_start[s + 1];
    if (end < begin || end > n)
      return invalid_argument("query_start[{}] = {} is outside [{}, {}]", s + 1, end, begin, n);
    const int32_t* table = in.block_tables.data() + static_cast<size_t>(s) * in.max_blocks_per_seq;
    int max_pos = -1;
    for (int t = begin; t < end; ++t) {
      const int32_t id = in.token_ids[t], pos = in.positions[t];
      if (id < 0 || id >= config_.vocab_size)
        return invalid_argument("token id {} at index {} is outside the vocabulary [0, {})", id, t, config_.vocab_size);
      if (pos < 0) return invalid_argument("negative position {} at token {}", pos, t);
      if (pos >= config_.max_position_embeddings)
        return out_of_range("position {} is beyond the model's context of {} tokens", pos,
                            config_.max_position_embeddings);
      if (pos >= in.seq_lens[s])
        return invalid_argument("position {} of sequence {} is not below its seq_len {}", pos, s, in.seq_lens[s]);
      if (pos / bs >= in.max_blocks_per_seq)
        return invalid_argument("position {} of sequence {} is past its block table of {} blocks", pos, s,
                                in.max_blocks_per_seq);
      const int64_t expected_slot = static_cast<int64_t>(table[pos / bs]) * bs + pos % bs;
      if (in.slot_mapping[t] != expected_slot)
        return invalid_argument("token {} (sequence {}, position {}) maps to slot {}, but its block table says {}", t,
                                s, pos, in.slot_mapping[t], expected_slot);
      max_pos = std::max(max_pos, pos);
    }
    for (int b = 0; b <= max_pos / bs && max_pos >= 0; ++b)
      if (table[b] < 0 || table[b] >= layout_.num_blocks)
        return invalid_argument("sequence {} block table entry {} is {}, outside [0, {})", s, b, table[b],
                                layout_.num_blocks);
  }
  return validate_sample_rows(in);
}

Status CpuBackend::all_reduce(float* data, int64_t count) {
  return comm_ == nullptr ? Status::ok() : comm_->all_reduce_sum(data, count);
}

Status CpuBackend::embed(const StepInput& in) {
  const int64_t n = in.num_tokens(), h = config_.hidden_size;
  if (comm_ == nullptr) {
    if (weights_.embed.empty()) embedding_packed(weights_.lm_head, in.token_ids.data(), n, hidden_.data());
    else embedding(weights_.embed.data(), h, in.token_ids.data(), n, hidden_.data());  // [n, h]
    return Status::ok();
  }
  // Vocabulary-parallel: each rank writes the rows of its tokens, zeros for
  // the others', and the sum over ranks is every token's row.
  const int64_t v0 = shard_.vocab_begin, vn = shard_.vocab_count(model_config_);
  for (int64_t t = 0; t < n; ++t) {
    float* row = hidden_.data() + t * h;
    const int32_t local = static_cast<int32_t>(in.token_ids[t] - v0);
    if (local < 0 || local >= vn) std::fill(row, row + h, 0.0f);
    else if (weights_.embed.empty()) embedding_packed(weights_.lm_head, &local, 1, row);
    else embedding(weights_.embed.data(), h, &local, 1, row);
  }
  return all_reduce(hidden_.data(), n * h);
}

Status CpuBackend::forward_layers(const StepInput& in) {
  const int64_t n = in.num_tokens(), h = config_.hidden_size;
  seq_of_token_.resize(n);
  for (int s = 0; s < in.num_seqs(); ++s)
    for (int t = in.query_start[s]; t < in.query_start[s + 1]; ++t) seq_of_token_[t] = s;
  hidden_.resize(n * h);
  normed_.resize(n * h);
  proj_.resize(n * h);
  BATON_RETURN_IF_ERROR(embed(in));       // [n, h]
  cos_sin_.resize(n * config_.head_dim);  // [n, 2, head_dim / 2], shared by every layer
  rope_cos_sin(in.positions.data(), n, inv_freq_.data(), config_.head_dim / 2, cos_sin_.data());
  if (const float mscale = static_cast<float>(rope_attention_factor(config_)); mscale != 1.0f)
    for (float& v : cos_sin_) v *= mscale;  // yarn: HF scales cos and sin themselves
  const float eps = static_cast<float>(config_.rms_norm_eps);
  for (int layer = 0; layer < config_.num_layers; ++layer) {
    const CpuLayerWeights& L = weights_.layers[layer];
    rmsnorm(hidden_.data(), L.input_norm.data(), n, h, eps, normed_.data());
    if (config_.is_mla()) mla_attention(in, layer);  // proj_ = attention output after o_proj
    else attention(in, layer);
    BATON_RETURN_IF_ERROR(all_reduce(proj_.data(), n * h));  // o_proj is row-parallel
    for (int64_t i = 0; i < n * h; ++i) hidden_[i] += proj_[i];
    rmsnorm(hidden_.data(), L.post_norm.data(), n, h, eps, normed_.data());
    if (L.is_moe) moe_mlp(layer, n);
    else dense_mlp(layer, n);
    BATON_RETURN_IF_ERROR(all_reduce(proj_.data(), n * h));  // down (and each expert's) is row-parallel
    for (int64_t i = 0; i < n * h; ++i) hidden_[i] += proj_[i];
  }
  return Status::ok();
}

void CpuBackend::attention(const StepInput& in, int layer) {
  const CpuLayerWeights& L = weights_.layers[layer];
  const int64_t n = in.num_tokens();
  const int hd = config_.head_dim, nh = config_.num_heads, nkv = config_.num_kv_heads;
  const int64_t qs = config_.q_size(), kvs = config_.kv_size(), width = qs + 2 * kvs;
  qkv_.resize(n * width);
  matmul_packed(normed_.data(), n, L.qkv, L.qkv_bias.empty() ? nullptr : L.qkv_bias.data(), qkv_.data(),
                pool_.get());  // [n, q + 2 kv]
  q_.resize(n * qs);
  k_.resize(n * kvs);
  v_.resize(n * kvs);
  for (int64_t t = 0; t < n; ++t) {
    const float* row = qkv_.data() + t * width;
    std::copy(row, row + qs, q_.data() + t * qs);
    std::copy(row + qs, row + qs + kvs, k_.data() + t * kvs);
    std::copy(row + qs + kvs, row + width, v_.data() + t * kvs);
  }
  if (!L.q_norm.empty()) {  // qwen3: RMSNorm over each head, before RoPE
    const float eps = static_cast<float>(config_.rms_norm_eps);
    rmsnorm(q_.data(), L.q_norm.data(), n * nh, hd, eps, q_.data());   // [n * nh, hd]
    rmsnorm(k_.data(), L.k_norm.data(), n * nkv, hd, eps, k_.data());  // [n * nkv, hd]
  }
  apply_rope_cos_sin(q_.data(), n, nh, hd, cos_sin_.data());
  apply_rope_cos_sin(k_.data(), n, nkv, hd, cos_sin_.data());
  write_kv(k_.data(), v_.data(), in.slot_mapping.data(), n, layout_, layer, kv_.get());

  attn_.resize(n * qs);
  paged_attention(paged_args(in, layer, q_.data(), 1.0f / std::sqrt(static_cast<float>(hd))), attn_.data(),
                  pool_.get());  // [n, nh, hd]
  matmul_packed(attn_.data(), n, L.o_proj, L.o_bias.empty() ? nullptr : L.o_bias.data(), proj_.data(),
                pool_.get());  // [n, h]
}

PagedAttentionArgs CpuBackend::paged_args(const StepInput& in, int layer, const float* q, float scale) const {
  PagedAttentionArgs args;
  args.q = q;
  args.num_tokens = in.num_tokens();
  args.num_heads = config_.num_heads;
  args.positions = in.positions.data();
  args.seq_of_token = seq_of_token_.data();
  args.block_tables = in.block_tables.data();
  args.max_blocks_per_seq = in.max_blocks_per_seq;
  args.kv_cache = kv_.get();
  args.layout = layout_;
  args.layer = layer;
  args.scale = scale;
  return args;
}

void CpuBackend::dense_mlp(int layer, int64_t n) {
  const CpuLayerWeights& L = weights_.layers[layer];
  const int64_t inter = config_.intermediate_size;
  gate_up_.resize(n * 2 * inter);
  act_.resize(n * inter);
  matmul_packed(normed_.data(), n, L.gate_up, nullptr, gate_up_.data(), pool_.get());  // [n, 2 inter]
  silu_mul(gate_up_.data(), n, inter, act_.data());                                    // [n, inter]
  matmul_packed(act_.data(), n, L.down, nullptr, proj_.data(), pool_.get());           // [n, h]
}

void CpuBackend::moe_mlp(int layer, int64_t n) {
  const CpuLayerWeights& L = weights_.layers[layer];
  const int64_t h = config_.hidden_size, mi = config_.moe_intermediate_size;
  const int ne = config_.num_experts, k = config_.num_experts_per_tok;
  std::vector<float> router_logits(n * ne);  // [n, num_experts]
  matmul_packed(normed_.data(), n, L.router, nullptr, router_logits.data(), pool_.get());
  std::vector<int32_t> ids(n * k);    // [n, k]
  std::vector<float> weights(n * k);  // [n, k]
  if (config_.arch == Arch::kDeepseekV3) {
    GroupedTopkArgs route;
    route.num_experts = ne;
    route.top_k = k;
    route.n_group = config_.deepseek_moe.n_group;
    route.topk_group = config_.deepseek_moe.topk_group;
    route.renormalize = config_.norm_topk_prob;
    route.routed_scaling_factor = static_cast<float>(config_.deepseek_moe.routed_scaling_factor);
    grouped_topk_route(router_logits.data(), L.expert_bias.data(), n, route, ids.data(), weights.data());
  } else {
    moe_route(router_logits.data(), n, ne, k, config_.norm_topk_prob, ids.data(), weights.data());
  }
  std::fill(proj_.begin(), proj_.begin() + n * h, 0.0f);
  std::vector<int64_t> rows;
  std::vector<float> row_w, xe, ye;
  // This rank's experts (all of them, or its expert-parallel run; the MoE
  // block's all-reduce adds the others') in ascending order, as HF accumulates.
  for (int e = shard_.expert_begin; e < shard_.expert_begin + shard_.num_local_experts; ++e) {
    const int x = e - shard_.expert_begin;  // the local index of its weights
    rows.clear();
    row_w.clear();
    for (int64_t t = 0; t < n; ++t)
      for (int j = 0; j < k; ++j)
        if (ids[t * k + j] == e) {
          rows.push_back(t);
          row_w.push_back(weights[t * k + j]);
        }
    if (rows.empty()) continue;
    const int64_t m = static_cast<int64_t>(rows.size());
    xe.resize(m * h);
    for (int64_t r = 0; r < m; ++r)
      std::copy(normed_.data() + rows[r] * h, normed_.data() + (rows[r] + 1) * h, xe.data() + r * h);
    gate_up_.resize(m * 2 * mi);
    act_.resize(m * mi);
    ye.resize(m * h);
    matmul_packed(xe.data(), m, L.expert_gate_up[x], nullptr, gate_up_.data(), pool_.get());  // [m, 2 mi]
    silu_mul(gate_up_.data(), m, mi, act_.data());                                            // [m, mi]
    matmul_packed(act_.data(), m, L.expert_down[x], nullptr, ye.data(), pool_.get());         // [m, h]
    for (int64_t r = 0; r < m; ++r) {
      float* dst = proj_.data() + rows[r] * h;
      const float* src = ye.data() + r * h;
      for (int64_t i = 0; i < h; ++i) dst[i] += src[i] * row_w[r];
    }
  }
  if (!L.shared_down.empty()) add_shared_experts(layer, n);
}

void CpuBackend::add_shared_experts(int layer, int64_t n) {
  const CpuLayerWeights& L = weights_.layers[layer];
  const int64_t h = config_.hidden_size, si = L.shared_down.in;
  gate_up_.resize(n * 2 * si);
  act_.resize(n * si);
  std::vector<float> shared(n * h);                                                           // [n, h]
  matmul_packed(normed_.data(), n, L.shared_gate_up, nullptr, gate_up_.data(), pool_.get());  // [n, 2 si]
  silu_mul(gate_up_.data(), n, si, act_.data());                                              // [n, si]
  matmul_packed(act_.data(), n, L.shared_down, nullptr, shared.data(), pool_.get());          // [n, h]
  for (int64_t i = 0; i < n * h; ++i) proj_[i] += shared[i];
}

Status CpuBackend::compute_logits(const std::vector<int64_t>& rows, std::vector<float>& logits) {
  const int64_t h = config_.hidden_size, vocab = config_.vocab_size, m = static_cast<int64_t>(rows.size());
  std::vector<float> x(m * h);  // [m, h]
  for (int64_t r = 0; r < m; ++r)
    rmsnorm(hidden_.data() + rows[r] * h, weights_.final_norm.data(), 1, h, static_cast<float>(config_.rms_norm_eps),
            x.data() + r * h);
  if (comm_ == nullptr) {
    logits.resize(m * vocab);
    matmul_packed(x.data(), m, weights_.lm_head, nullptr, logits.data(), pool_.get());  // [m, vocab]
    return Status::ok();
  }
  // Vocabulary-parallel LM head: this rank's columns, gathered from every rank.
  const int64_t per_rank = shard_.vocab_per_rank, mine = weights_.lm_head.out, world = shard_.world_size;
  std::vector<float> part(m * per_rank, 0.0f);  // [m, per_rank]; padding columns stay 0 and are dropped
  if (mine > 0) {
    std::vector<float> y(m * mine);
    matmul_packed(x.data(), m, weights_.lm_head, nullptr, y.data(), pool_.get());  // [m, mine]
    for (int64_t r = 0; r < m; ++r)
      std::copy(y.data() + r * mine, y.data() + (r + 1) * mine, part.data() + r * per_rank);
  }
  std::vector<float> gathered(world * m * per_rank);  // [world, m, per_rank]
  BATON_RETURN_IF_ERROR(comm_->all_gather(part.data(), m * per_rank, gathered.data()));
  logits.resize(m * vocab);
  for (int64_t w = 0; w < world; ++w) {
    const int64_t v0 = w * per_rank, count = std::max<int64_t>(0, std::min(per_rank, vocab - v0));
    for (int64_t r = 0; r < m; ++r) {
      const float* src = gathered.data() + (w * m + r) * per_rank;
      std::copy(src, src + count, logits.data() + r * vocab + v0);
    }
  }
  return Status::ok();
}

Status CpuBackend::forward(const StepInput& in, const std::vector<int64_t>& rows, std::vector<float>& logits) {
  Status st = forward_layers(in);
  if (st.is_ok() && !rows.empty()) st = compute_logits(rows, logits);
  if (!st.is_ok() && comm_ != nullptr) comm_->abort(st);  // no peer waits for this rank any more
  return st;
}

Result<StepOutput> CpuBackend::execute(const StepInput& in) {
  BATON_RETURN_IF_ERROR(validate(in));
  std::vector<int64_t> rows;
  rows.reserve(in.samples.size());
  for (const SampleRequest& r : in.samples) rows.push_back(in.query_start[r.seq_index + 1] - 1);
  std::vector<float> logits;
  BATON_RETURN_IF_ERROR(forward(in, rows, logits));  // [num_samples, vocab]
  StepOutput out;
  if (rows.empty() || shard_.rank != 0) return out;  // rank 0 samples for the instance
  const int vocab = config_.vocab_size;
  out.samples.reserve(rows.size());
  for (size_t i = 0; i < in.samples.size(); ++i) {
    Result<SampleResult> s = sampler_.sample(logits.data() + i * vocab, vocab, in.samples[i]);
    if (!s.is_ok()) return s.status().with_context(fmt::format("sampling sequence {}", in.samples[i].seq_index));
    out.samples.push_back(std::move(s).value());
  }
  if (in.return_logits) out.logits = std::move(logits);
  return out;
}

Result<std::vector<float>> CpuBackend::forward_all_logits(const StepInput& in) {
  BATON_RETURN_IF_ERROR(validate(in));
  std::vector<int64_t> rows(in.num_tokens());
  for (int64_t t = 0; t < in.num_tokens(); ++t) rows[t] = t;
  std::vector<float> logits;
  BATON_RETURN_IF_ERROR(forward(in, rows, logits));  // [num_tokens, vocab]
  return logits;
}

}  // namespace baton
