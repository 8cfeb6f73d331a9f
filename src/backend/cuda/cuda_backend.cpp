#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "backend/cpu/cpu_ops.h"
#include "backend/sampler.h"
#include "common/log.h"

namespace baton::cuda {
namespace {

constexpr int kMaxSplits = 32;
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
  for (auto& [k, g] : graphs_) cudaGraphExecDestroy(g);
  if (input_host_) cudaFreeHost(input_host_);
  if (output_host_) cudaFreeHost(output_host_);
  if (stream_) cudaStreamDestroy(stream_);
}

Result<std::unique_ptr<CudaBackend>> CudaBackend::create(const Checkpoint& ckpt,
                                                         const CudaBackendOptions& options) {
  std::unique_ptr<CudaBackend> b(new CudaBackend());
  b->config_ = ckpt.config();
  BATON_RETURN_IF_ERROR(b->init_common(options));
  BATON_ASSIGN_OR_RETURN(b->weights_, CudaWeights::load(ckpt, b->stream_, &b->load_gbps_));
  BATON_RETURN_IF_ERROR(b->init_common(options));
  return b;
}

Result<std::unique_ptr<CudaBackend>> CudaBackend::create_random(const ModelConfig& config,
                                                                const CudaBackendOptions& options,
                                                                uint64_t seed) {
  std::unique_ptr<CudaBackend> b(new CudaBackend());
  b->config_ = config;
  BATON_RETURN_IF_ERROR(b->init_common(options));
  BATON_ASSIGN_OR_RETURN(b->weights_, CudaWeights::random(config, seed, b->stream_));
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
      return unimplemented("the CUDA backend is built for sm_90a (Hopper); device {} is sm_{}{}", prop.name,
                           prop.major, prop.minor);
    device_name_ = prop.name;
    num_sms_ = prop.multiProcessorCount;
    const int hd = c.head_dim;
    if (hd != 16 && hd != 32 && hd != 64 && hd != 128)
      return unimplemented("the CUDA backend supports head_dim 16, 32, 64, 128; the model has {}", hd);
    if (c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0 || c.num_heads / c.num_kv_heads > 16)
      return unimplemented("the CUDA backend needs num_heads a multiple of num_kv_heads, group <= 16 ({} / {})",
                           c.num_heads, c.num_kv_heads);
    if (c.hidden_size % 8 != 0 || (c.is_moe() && c.moe_intermediate_size % 8 != 0))
      return unimplemented("the CUDA backend needs hidden and MoE intermediate sizes divisible by 8");
    BATON_CUDA_RETURN(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    return Status::ok();
  }
  BATON_RETURN_IF_ERROR(gemm_.init());
  gemm_.set_row_invariant(options_.batch_invariant);
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
  std::vector<Alloc> allocs = {
      {&residual_, tm * h * 4}, {&normed_, tm * h * 2}, {&qkv_, tm * (q + 2 * kv) * 2}, {&q_, tm * q * 2},
      {&attn_, tm * q * 2}, {&proj_, tm * h * 2}, {&gate_up_, tm * 2 * inter * 2}, {&act_, tm * inter * 2},
      {&attn_partial_, attn_partial_floats_ * 4}, {&final_normed_, sm * h * 2}, {&logits_, sm * vocab * 4},
      {&sample_work_, sm * vocab * 4}, {&sample_out_, sm * (2 + 2 * kMaxTopLogprobs) * 4}};
  if (c.is_moe()) {
    allocs.push_back({&router_, tm * e * 4});
    allocs.push_back({&topk_ids_, tm * k * 4});
    allocs.push_back({&topk_w_, tm * k * 4});
    allocs.push_back({&moe_offsets_, (e + 1) * 4});
    allocs.push_back({&sorted_slots_, tm * k * 4});
    allocs.push_back({&slot_pos_, tm * k * 4});
    allocs.push_back({&moe_gu_, tm * k * 2 * mi * 2});
    allocs.push_back({&moe_act_, tm * k * mi * 2});
    allocs.push_back({&moe_out_, tm * k * h * 2});
  }
  size_t ws = 0;
  for (const Alloc& a : allocs) {
    Status st = a.buf->allocate(a.bytes);
    if (!st.is_ok())
      return resource_exhausted("the step workspace for {} tokens does not fit on the GPU after {:.2f} GiB of weights: {}",
                                tm, weights_.num_bytes() / 1073741824.0, st.message());
    ws += a.bytes;
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
  BATON_LOG_INFO("cuda backend on {}: weights {:.2f} GiB, workspace {:.2f} GiB, KV budget {:.2f} GiB",
                 device_name_, weights_.num_bytes() / 1073741824.0, ws / 1073741824.0,
                 available_kv_bytes_ / 1073741824.0);
  return Status::ok();
}

size_t CudaBackend::kv_block_bytes(int block_size) const {
  return static_cast<size_t>(config_.num_layers) * 2 * block_size * config_.num_kv_heads * config_.head_dim * 2;
}

Status CudaBackend::init_kv_cache(int num_blocks, int block_size) {
  if (num_blocks <= 0 || block_size <= 0)
    return invalid_argument("KV cache needs positive num_blocks and block_size, got {} and {}", num_blocks, block_size);
  layout_ = KvLayout{config_.num_layers, config_.num_kv_heads, config_.head_dim, block_size, num_blocks, DType::kBF16};
  Status st = kv_.allocate(layout_.total_bytes());
  if (!st.is_ok())
    return resource_exhausted("KV cache of {} blocks ({:.2f} GiB) does not fit on the GPU: {}", num_blocks,
                              layout_.total_bytes() / 1073741824.0, st.message());
  BATON_CUDA_RETURN(cudaMemsetAsync(kv_.get(), 0, kv_.bytes(), stream_));
  BATON_CUDA_RETURN(cudaStreamSynchronize(stream_));
  for (auto& [key, g] : graphs_) cudaGraphExecDestroy(g);
  graphs_.clear();
  return Status::ok();
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
  for (auto& [k, g] : graphs_) cudaGraphExecDestroy(g);  // they point at the old buffer
  graphs_.clear();
  return Status::ok();
}

CudaBackend::Layout CudaBackend::make_layout(int t, int s, int mbps, int ns, int items, int pens) {
  Layout l;
  l.num_tokens = t;
  l.num_seqs = s;
  l.mbps = mbps;
  l.num_samples = ns;
  l.num_items = items;
  l.num_penalties = pens;
  size_t o = 0;
  auto take = [&](size_t bytes) {
    size_t at = o;
    o = align_up(o + bytes, 16);
    return at;
  };
  l.token_ids = take(4 * t);
  l.positions = take(4 * t);
  l.slots = take(8 * t);
  l.query_start = take(4 * (s + 1));
  l.seq_lens = take(4 * s);
  l.block_tables = take(4 * static_cast<size_t>(s) * mbps);
  l.sample_rows = take(4 * ns);
  l.items = take(8 * items);
  l.params = take(sizeof(SampleRowParams) * ns);
  l.penalties = take(sizeof(PenaltyToken) * pens);
  l.bytes = o;
  return l;
}

Status CudaBackend::validate(const StepInput& in) const {
  if (!kv_.get()) return failed_precondition("execute() before init_kv_cache()");
  const int n = in.num_tokens(), num_seqs = in.num_seqs();
  if (n == 0) return invalid_argument("step has no tokens");
  if (n > options_.max_num_tokens)
    return invalid_argument("step has {} tokens; the CUDA backend's workspace holds {}", n, options_.max_num_tokens);
  if (static_cast<int>(in.positions.size()) != n || static_cast<int>(in.slot_mapping.size()) != n)
    return invalid_argument("step has {} tokens but {} positions and {} slots", n, in.positions.size(),
                            in.slot_mapping.size());
  if (num_seqs == 0) return invalid_argument("step has no sequences");
  if (static_cast<int>(in.query_start.size()) != num_seqs + 1 || in.query_start.front() != 0 ||
      in.query_start.back() != n)
    return invalid_argument("query_start must have num_seqs + 1 = {} entries from 0 to {}", num_seqs + 1, n);
  if (in.max_blocks_per_seq <= 0 ||
      in.block_tables.size() != static_cast<size_t>(num_seqs) * static_cast<size_t>(in.max_blocks_per_seq))
    return invalid_argument("block_tables must hold num_seqs x max_blocks_per_seq = {} x {} entries, has {}",
                            num_seqs, in.max_blocks_per_seq, in.block_tables.size());
  if (static_cast<int>(in.samples.size()) > options_.max_num_samples)
    return invalid_argument("step samples {} sequences; the CUDA backend holds {}", in.samples.size(),
                            options_.max_num_samples);
  const int bs = layout_.block_size;
  for (int s = 0; s < num_seqs; ++s) {
    const int begin = in.query_start[s], end = in.query_start[s + 1];
    if (end < begin || end > n) return invalid_argument("query_start[{}] = {} is outside [{}, {}]", s + 1, end, begin, n);
    const int q_len = end - begin, seq_len = in.seq_lens[s];
    if (seq_len < q_len) return invalid_argument("sequence {} has seq_len {} below its {} new tokens", s, seq_len, q_len);
    if (static_cast<int64_t>(seq_len) > static_cast<int64_t>(in.max_blocks_per_seq) * bs)
      return invalid_argument("sequence {} has seq_len {} past its block table of {} blocks", s, seq_len,
                              in.max_blocks_per_seq);
    const int32_t* table = in.block_tables.data() + static_cast<size_t>(s) * in.max_blocks_per_seq;
    for (int t = begin; t < end; ++t) {
      const int32_t id = in.token_ids[t], pos = in.positions[t];
      if (id < 0 || id >= config_.vocab_size)
        return invalid_argument("token id {} at index {} is outside the vocabulary [0, {})", id, t, config_.vocab_size);
      if (pos != seq_len - q_len + (t - begin))
        return invalid_argument("token {} of sequence {} has position {}, expected {} (cached context + offset)", t,
                                s, pos, seq_len - q_len + (t - begin));
      if (pos >= config_.max_position_embeddings)
        return out_of_range("position {} is beyond the model's context of {} tokens", pos,
                            config_.max_position_embeddings);
      const int64_t expected_slot = static_cast<int64_t>(table[pos / bs]) * bs + pos % bs;
      if (in.slot_mapping[t] != expected_slot)
        return invalid_argument("token {} (sequence {}, position {}) maps to slot {}, but its block table says {}", t,
                                s, pos, in.slot_mapping[t], expected_slot);
    }
    for (int b = 0; b < (seq_len + bs - 1) / bs; ++b)
      if (table[b] < 0 || table[b] >= layout_.num_blocks)
        return invalid_argument("sequence {} block table entry {} is {}, outside [0, {})", s, b, table[b],
                                layout_.num_blocks);
  }
  int prev = -1;
  for (const SampleRequest& r : in.samples) {
    if (r.seq_index <= prev || r.seq_index >= num_seqs)
      return invalid_argument("sample seq_index {} out of order or outside [0, {})", r.seq_index, num_seqs);
    if (in.query_start[r.seq_index + 1] == in.query_start[r.seq_index])
      return invalid_argument("sequence {} samples but has no tokens this step", r.seq_index);
    if (r.params == nullptr) return invalid_argument("sample for sequence {} has no sampling params", r.seq_index);
    BATON_RETURN_IF_ERROR(validate_sampling_params(*r.params));
    for (int32_t id : r.banned_token_ids)
      if (id < 0 || id >= config_.vocab_size) return invalid_argument("banned token id {} outside the vocabulary", id);
    for (const auto* ids : {r.prompt_ids, r.output_ids})
      if (ids)
        for (int32_t id : *ids)
          if (id < 0 || id >= config_.vocab_size)
            return invalid_argument("history token id {} outside the vocabulary", id);
    prev = r.seq_index;
  }
  return Status::ok();
}

bool CudaBackend::pack(const StepInput& in, const Layout& lay, bool pad, const std::vector<int>& rows) {
  char* base = static_cast<char*>(input_host_);
  auto* tok = reinterpret_cast<int32_t*>(base + lay.token_ids);
  auto* pos = reinterpret_cast<int32_t*>(base + lay.positions);
  auto* slot = reinterpret_cast<int64_t*>(base + lay.slots);
  auto* qs = reinterpret_cast<int32_t*>(base + lay.query_start);
  auto* sl = reinterpret_cast<int32_t*>(base + lay.seq_lens);
  auto* bt = reinterpret_cast<int32_t*>(base + lay.block_tables);
  auto* sr = reinterpret_cast<int32_t*>(base + lay.sample_rows);
  auto* items = reinterpret_cast<int32_t*>(base + lay.items);
  auto* params = reinterpret_cast<SampleRowParams*>(base + lay.params);
  auto* pens = reinterpret_cast<PenaltyToken*>(base + lay.penalties);
  const int n = in.num_tokens(), s = in.num_seqs();
  std::memcpy(tok, in.token_ids.data(), 4 * n);
  std::memcpy(pos, in.positions.data(), 4 * n);
  std::memcpy(slot, in.slot_mapping.data(), 8 * n);
  std::memcpy(qs, in.query_start.data(), 4 * (s + 1));
  std::memcpy(sl, in.seq_lens.data(), 4 * s);
  for (int t = n; t < lay.num_tokens; ++t) {  // decode padding: one dummy token per dummy sequence
    tok[t] = 0;
    pos[t] = 0;
    slot[t] = -1;
  }
  for (int i = s; i < lay.num_seqs; ++i) {
    qs[i + 1] = qs[i] + 1;
    sl[i] = 1;
  }
  for (int i = 0; i < lay.num_seqs; ++i) {
    int32_t* row = bt + static_cast<size_t>(i) * lay.mbps;
    const int have = i < s ? std::min(in.max_blocks_per_seq, lay.mbps) : 0;
    for (int b = 0; b < have; ++b) {
      int32_t v = in.block_tables[static_cast<size_t>(i) * in.max_blocks_per_seq + b];
      row[b] = v < 0 ? 0 : v;
    }
    for (int b = have; b < lay.mbps; ++b) row[b] = 0;
  }
  // Prefill work items: (seq, first row of the tile), heaviest (last) tiles first.
  if (lay.num_items > 0) {
    const int group = config_.num_heads / config_.num_kv_heads, rpt = attention_rows_per_tile();
    int k = 0;
    for (int i = 0; i < s; ++i) {
      int rows_i = (in.query_start[i + 1] - in.query_start[i]) * group;
      for (int tile = (rows_i + rpt - 1) / rpt - 1; tile >= 0; --tile) {
        items[2 * k] = i;
        items[2 * k + 1] = tile * rpt;
        ++k;
      }
    }
  }
  // Sampling rows and their parameters.
  int np = 0;
  std::unordered_map<int32_t, int> index;
  for (int r = 0; r < lay.num_samples; ++r) {
    const int si = rows[r];  // index into in.samples, or -1
    SampleRowParams p;
    if (si < 0) {
      sr[r] = pad ? r : 0;
      params[r] = p;
      continue;
    }
    const SampleRequest& req = in.samples[si];
    sr[r] = in.query_start[req.seq_index + 1] - 1;
    const SamplingParams& sp = *req.params;
    p.temperature = sp.temperature;
    p.top_k = sp.top_k;
    p.top_p = sp.top_p;
    p.min_p = sp.min_p;
    p.repetition_penalty = sp.repetition_penalty;
    p.presence_penalty = sp.presence_penalty;
    p.frequency_penalty = sp.frequency_penalty;
    p.num_logprobs = sp.num_logprobs;
    p.seed = req.seed;
    p.step = static_cast<uint64_t>(req.num_output_tokens);
    p.penalty_begin = np;
    index.clear();
    auto entry = [&](int32_t id) -> PenaltyToken* {
      auto it = index.find(id);
      if (it != index.end()) return &pens[it->second];
      if (np >= lay.num_penalties) return nullptr;
      index.emplace(id, np);
      pens[np] = PenaltyToken{id, 0, 0, 0};
      return &pens[np++];
    };
    for (int32_t id : req.banned_token_ids) {
      PenaltyToken* e = entry(id);
      if (!e) return false;
      e->banned = 1;
    }
    if (sp.repetition_penalty != 1.0f) {
      for (const auto* ids : {req.prompt_ids, req.output_ids})
        if (ids)
          for (int32_t id : *ids) {
            PenaltyToken* e = entry(id);
            if (!e) return false;
            e->seen = 1;
          }
    }
    if ((sp.presence_penalty != 0.0f || sp.frequency_penalty != 0.0f) && req.output_ids) {
      for (int32_t id : *req.output_ids) {
        PenaltyToken* e = entry(id);
        if (!e) return false;
        e->output_count++;
      }
    }
    p.penalty_end = np;
    params[r] = p;
  }
  return true;
}

void CudaBackend::forward(const Launch& l) {
  const ModelConfig& c = config_;
  const Layout& lay = l.lay;
  char* dev = static_cast<char*>(input_dev_.get());
  const auto* tok = reinterpret_cast<const int32_t*>(dev + lay.token_ids);
  const int t = lay.num_tokens, h = c.hidden_size, vocab = c.vocab_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  launch_embedding(tok, weights_.embed, residual_.as<float>(), t, h, vocab, stream_);
  run_layers(l);
  const auto* rows = reinterpret_cast<const int32_t*>(dev + lay.sample_rows);
  const int ns = lay.num_samples;
  if (ns == 0) return;
  launch_add_rmsnorm(residual_.as<float>(), proj_.as<bf16>(), nullptr, weights_.final_norm,
                     final_normed_.as<bf16>(), rows, ns, h, eps, stream_);
  gemm_.run(final_normed_.as<bf16>(), weights_.lm_head, logits_.get(), ns, vocab, h, true, stream_);  // [ns, vocab]
  if (!l.sample) return;
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

void CudaBackend::run_layers(const Launch& l) {
  const ModelConfig& c = config_;
  const Layout& lay = l.lay;
  char* dev = static_cast<char*>(input_dev_.get());
  const int t = lay.num_tokens, h = c.hidden_size, q = c.q_size(), kv = c.kv_size();
  const float eps = static_cast<float>(c.rms_norm_eps);
  KvDev kvd;
  kvd.base = kv_.as<bf16>();
  kvd.block_elems = layout_.block_elems();
  kvd.layer_block_elems = layout_.layer_block_elems();
  kvd.half_elems = layout_.half_layer_block_elems();
  kvd.token_elems = layout_.token_elems();
  kvd.block_size = layout_.block_size;
  for (int i = 0; i < c.num_layers; ++i) {
    const CudaLayerWeights& L = weights_.layers[i];
    // residual += previous MLP output; normed = rmsnorm(residual) * input_norm
    launch_add_rmsnorm(residual_.as<float>(), i == 0 ? nullptr : proj_.as<bf16>(), nullptr, L.input_norm,
                       normed_.as<bf16>(), nullptr, t, h, eps, stream_);
    gemm_.run(normed_.as<bf16>(), L.qkv, qkv_.get(), t, q + 2 * kv, h, false, stream_);  // [t, q + 2kv]
    QkvRopeArgs ra;
    ra.qkv = qkv_.as<bf16>();
    ra.bias = L.qkv_bias;
    ra.q_norm = L.q_norm;
    ra.k_norm = L.k_norm;
    ra.eps = eps;
    ra.positions = reinterpret_cast<const int32_t*>(dev + lay.positions);
    ra.slot_mapping = reinterpret_cast<const int64_t*>(dev + lay.slots);
    ra.inv_freq = inv_freq_.as<float>();
    ra.q_out = q_.as<bf16>();
    ra.kv = kvd;
    ra.layer = i;
    ra.num_tokens = t;
    ra.num_heads = c.num_heads;
    ra.num_kv_heads = c.num_kv_heads;
    ra.head_dim = c.head_dim;
    launch_qkv_rope_cache(ra, stream_);
    AttnArgs aa;
    aa.q = q_.as<bf16>();
    aa.out = attn_.as<bf16>();
    aa.kv = kvd;
    aa.layer = i;
    aa.query_start = reinterpret_cast<const int32_t*>(dev + lay.query_start);
    aa.seq_lens = reinterpret_cast<const int32_t*>(dev + lay.seq_lens);
    aa.block_tables = reinterpret_cast<const int32_t*>(dev + lay.block_tables);
    aa.max_blocks_per_seq = lay.mbps;
    aa.num_seqs = lay.num_seqs;
    aa.num_heads = c.num_heads;
    aa.num_kv_heads = c.num_kv_heads;
    aa.head_dim = c.head_dim;
    aa.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
    if (l.decode_only) {
      launch_attention_decode(aa, l.split_len, l.max_splits, attn_partial_.as<float>(), stream_);
    } else {
      launch_attention_prefill(aa, reinterpret_cast<const int32_t*>(dev + lay.items), lay.num_items, stream_);
    }
    gemm_.run(attn_.as<bf16>(), L.o_proj, proj_.get(), t, h, q, false, stream_);  // [t, h]
    launch_add_rmsnorm(residual_.as<float>(), proj_.as<bf16>(), L.o_bias, L.post_norm, normed_.as<bf16>(), nullptr,
                       t, h, eps, stream_);
    if (!L.is_moe) {
      const int in = c.intermediate_size;
      gemm_.run(normed_.as<bf16>(), L.gate_up, gate_up_.get(), t, 2 * in, h, false, stream_);  // [t, 2 in]
      launch_silu_mul(gate_up_.as<bf16>(), act_.as<bf16>(), t, in, stream_);
      gemm_.run(act_.as<bf16>(), L.down, proj_.get(), t, h, in, false, stream_);  // [t, h]
    } else {
      const int e = c.num_experts, k = c.num_experts_per_tok, mi = c.moe_intermediate_size;
      gemm_.run(normed_.as<bf16>(), L.router, router_.get(), t, e, h, true, stream_);  // [t, e] fp32
      launch_moe_topk(router_.as<float>(), t, e, k, c.norm_topk_prob, topk_ids_.as<int32_t>(), topk_w_.as<float>(),
                      stream_);
      launch_moe_align(topk_ids_.as<int32_t>(), t * k, e, moe_offsets_.as<int32_t>(), sorted_slots_.as<int32_t>(),
                       slot_pos_.as<int32_t>(), stream_);
      launch_grouped_gemm(normed_.as<bf16>(), sorted_slots_.as<int32_t>(), k, L.expert_gate_up,
                          moe_offsets_.as<int32_t>(), e, t * k, 2 * mi, h, moe_gu_.as<bf16>(), stream_);
      launch_silu_mul(moe_gu_.as<bf16>(), moe_act_.as<bf16>(), t * k, mi, stream_);
      launch_grouped_gemm(moe_act_.as<bf16>(), nullptr, 1, L.expert_down, moe_offsets_.as<int32_t>(), e, t * k, h,
                          mi, moe_out_.as<bf16>(), stream_);
      launch_moe_combine(moe_out_.as<bf16>(), slot_pos_.as<int32_t>(), topk_w_.as<float>(), t, k, h,
                         proj_.as<bf16>(), stream_);
    }
  }
}

Result<StepOutput> CudaBackend::finish(const StepInput& in, const Launch& l, const std::vector<int>& sample_of_row) {
  const size_t sm = options_.max_num_samples;
  StepOutput out;
  if (!in.samples.empty()) {
    BATON_CUDA_RETURN(cudaMemcpyAsync(output_host_, sample_out_.get(), sample_out_.bytes(), cudaMemcpyDeviceToHost,
                                      stream_));
  }
  const int vocab = config_.vocab_size;
  if (in.return_logits && !in.samples.empty()) host_logits_.resize(static_cast<size_t>(l.lay.num_samples) * vocab);
  if (in.return_logits && !in.samples.empty())
    BATON_CUDA_RETURN(cudaMemcpyAsync(host_logits_.data(), logits_.get(), host_logits_.size() * 4,
                                      cudaMemcpyDeviceToHost, stream_));
  BATON_CUDA_RETURN(cudaStreamSynchronize(stream_));
  BATON_CUDA_RETURN(cudaGetLastError());
  if (in.samples.empty()) return out;
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
  BATON_RETURN_IF_ERROR(validate(in));
  const int n = in.num_tokens(), s = in.num_seqs();
  const bool decode_only = n == s;
  for (const SampleRequest& r : in.samples)
    if (r.params->num_logprobs > kMaxTopLogprobs)
      return invalid_argument("num_logprobs {} is above the CUDA backend's {}", r.params->num_logprobs, kMaxTopLogprobs);
  Launch l;
  l.decode_only = decode_only && s <= options_.max_num_samples && !options_.batch_invariant;
  const int bucket = batch_bucket(s);
  if (options_.use_cuda_graphs && l.decode_only && bucket > 0 && bucket <= kGraphMaxBatch && !in.return_logits) {
    const int mbps_b = pow2_at_least(in.max_blocks_per_seq, 16);
    l.lay = make_layout(bucket, bucket, mbps_b, bucket, 0, bucket * kGraphPenaltiesPerSeq);
    std::vector<int> sample_of_row(bucket, -1);
    for (size_t i = 0; i < in.samples.size(); ++i) sample_of_row[in.samples[i].seq_index] = static_cast<int>(i);
    BATON_RETURN_IF_ERROR(ensure_input_capacity(l.lay.bytes));
    if (pack(in, l.lay, true, sample_of_row)) {
      const int ctx_cap = mbps_b * layout_.block_size;
      const int want = (8 * num_sms_ + bucket * config_.num_kv_heads - 1) / (bucket * config_.num_kv_heads);
      l.split_len = std::max<int>(align_up((ctx_cap + want - 1) / want, 64), align_up((ctx_cap + kMaxSplits - 1) / kMaxSplits, 64));
      l.max_splits = (ctx_cap + l.split_len - 1) / l.split_len;
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
        cudaGraphDestroy(graph);
        BATON_CUDA_RETURN(err);
        it = graphs_.emplace(key, exec).first;
      }
      BATON_CUDA_RETURN(cudaGraphLaunch(it->second, stream_));
      return finish(in, l, sample_of_row);
    }
  }
  // Eager path.
  int items = 0;
  if (!l.decode_only) {
    const int group = config_.num_heads / config_.num_kv_heads, rpt = attention_rows_per_tile();
    for (int i = 0; i < s; ++i) items += ((in.query_start[i + 1] - in.query_start[i]) * group + rpt - 1) / rpt;
  }
  int pens = 0;
  for (const SampleRequest& r : in.samples) {
    pens += static_cast<int>(r.banned_token_ids.size());
    if (r.params->repetition_penalty != 1.0f) {
      if (r.prompt_ids) pens += static_cast<int>(r.prompt_ids->size());
      if (r.output_ids) pens += static_cast<int>(r.output_ids->size());
    }
    if (r.params->presence_penalty != 0.0f || r.params->frequency_penalty != 0.0f)
      if (r.output_ids) pens += static_cast<int>(r.output_ids->size());
  }
  const int ns = static_cast<int>(in.samples.size());
  l.lay = make_layout(n, s, in.max_blocks_per_seq, ns, items, pens);
  std::vector<int> sample_of_row(ns);
  for (int i = 0; i < ns; ++i) sample_of_row[i] = i;
  BATON_RETURN_IF_ERROR(ensure_input_capacity(l.lay.bytes));
  BATON_CHECK(pack(in, l.lay, false, sample_of_row), "penalty list sized exactly");
  if (l.decode_only) {
    const int ctx_cap = in.max_blocks_per_seq * layout_.block_size;
    const int want = std::max(1, (8 * num_sms_ + s * config_.num_kv_heads - 1) / (s * config_.num_kv_heads));
    l.split_len = std::max<int>(align_up((ctx_cap + want - 1) / want, 64), align_up((ctx_cap + kMaxSplits - 1) / kMaxSplits, 64));
    l.max_splits = (ctx_cap + l.split_len - 1) / l.split_len;
  }
  BATON_CUDA_RETURN(cudaMemcpyAsync(input_dev_.get(), input_host_, l.lay.bytes, cudaMemcpyHostToDevice, stream_));
  forward(l);
  return finish(in, l, sample_of_row);
}

Result<std::vector<float>> CudaBackend::forward_all_logits(const StepInput& in) {
  BATON_RETURN_IF_ERROR(validate(in));
  const int n = in.num_tokens(), s = in.num_seqs();
  if (n > options_.max_num_samples)
    return invalid_argument("forward_all_logits: {} tokens is above max_num_samples {}", n, options_.max_num_samples);
  Launch l;
  l.sample = false;
  const int group = config_.num_heads / config_.num_kv_heads, rpt = attention_rows_per_tile();
  int items = 0;
  for (int i = 0; i < s; ++i) items += ((in.query_start[i + 1] - in.query_start[i]) * group + rpt - 1) / rpt;
  l.lay = make_layout(n, s, in.max_blocks_per_seq, n, items, 0);
  BATON_RETURN_IF_ERROR(ensure_input_capacity(l.lay.bytes));
  BATON_CHECK(pack(in, l.lay, false, std::vector<int>(n, -1)), "no penalties");
  auto* rows = reinterpret_cast<int32_t*>(static_cast<char*>(input_host_) + l.lay.sample_rows);
  for (int t = 0; t < n; ++t) rows[t] = t;
  BATON_CUDA_RETURN(cudaMemcpyAsync(input_dev_.get(), input_host_, l.lay.bytes, cudaMemcpyHostToDevice, stream_));
  forward(l);
  std::vector<float> logits(static_cast<size_t>(n) * config_.vocab_size);
  BATON_CUDA_RETURN(cudaMemcpyAsync(logits.data(), logits_.get(), logits.size() * 4, cudaMemcpyDeviceToHost, stream_));
  BATON_CUDA_RETURN(cudaStreamSynchronize(stream_));
  BATON_CUDA_RETURN(cudaGetLastError());
  return logits;
}

Result<std::unique_ptr<Backend>> make_cuda_backend(const Checkpoint& ckpt, const BackendOptions& options) {
  CudaBackendOptions o;
  o.device_id = options.device_id;
  o.gpu_memory_utilization = options.gpu_memory_utilization;
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<CudaBackend> b, CudaBackend::create(ckpt, o));
  return std::unique_ptr<Backend>(std::move(b));
}

namespace {
const bool kRegistered = register_backend("cuda", &make_cuda_backend);
}  // namespace

}  // namespace baton::cuda
