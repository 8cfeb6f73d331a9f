#include "engine/engine_core.h"

#include <algorithm>
#include <iterator>

#include "backend/sampler.h"
#include "common/check.h"
#include "common/clock.h"
#include "common/log.h"

namespace baton {

namespace {

constexpr size_t kDefaultKvCapBytes = size_t{1} << 30;  // CPU default: at most 1 GiB
constexpr int kDefaultKvSeqs = 4;                       // ... or max_model_len x 4 sequences
constexpr int kMaxLogprobs = 20;

}  // namespace

Result<std::unique_ptr<EngineCore>> EngineCore::create(std::unique_ptr<Backend> backend,
                                                       std::shared_ptr<const Detokenizer> detokenizer,
                                                       const EngineOptions& options) {
  if (!backend) return invalid_argument("engine: no backend");
  const ModelConfig& cfg = backend->model_config();
  if (options.block_size <= 0 || options.block_size > 1024) {
    return invalid_argument("--block-size must be in [1, 1024], got {}", options.block_size);
  }
  if (options.max_num_batched_tokens <= 0) {
    return invalid_argument("--max-num-batched-tokens must be positive, got {}", options.max_num_batched_tokens);
  }
  if (options.max_num_seqs <= 0) {
    return invalid_argument("--max-num-seqs must be positive, got {}", options.max_num_seqs);
  }
  if (options.num_kv_blocks < 0) {
    return invalid_argument("--num-kv-blocks must not be negative, got {}", options.num_kv_blocks);
  }
  int max_model_len = options.max_model_len > 0 ? options.max_model_len : cfg.max_position_embeddings;
  if (max_model_len <= 0)
    return invalid_argument("engine: the model gives no max_position_embeddings; pass --max-model-len");
  if (cfg.max_position_embeddings > 0 && max_model_len > cfg.max_position_embeddings) {
    return invalid_argument("--max-model-len {} exceeds the model's max_position_embeddings {}", max_model_len,
                            cfg.max_position_embeddings);
  }

  int num_blocks = options.num_kv_blocks;
  if (num_blocks == 0) {
    const size_t block_bytes = backend->kv_block_bytes(options.block_size);
    if (block_bytes == 0) return internal_error("engine: the backend reports 0-byte KV blocks");
    size_t bytes = options.kv_cache_bytes;
    if (bytes == 0) bytes = backend->available_kv_bytes();
    if (bytes == 0) {
      const size_t blocks_per_seq = static_cast<size_t>((max_model_len + options.block_size - 1) / options.block_size);
      bytes = std::min(kDefaultKvCapBytes, blocks_per_seq * kDefaultKvSeqs * block_bytes);
    }
    const size_t n = bytes / block_bytes;
    if (n == 0) {
      return invalid_argument("KV cache of {} bytes holds no block of {} bytes", bytes, block_bytes);
    }
    num_blocks = static_cast<int>(std::min<size_t>(n, 1u << 30));
  }
  BATON_RETURN_IF_ERROR(backend->init_kv_cache(num_blocks, options.block_size).with_context("allocating the KV cache"));
  BATON_LOG_INFO("engine: {} KV blocks of {} tokens, max_model_len {}, prefix caching {}", num_blocks,
                 options.block_size, max_model_len, options.enable_prefix_caching ? "on" : "off");
  return std::unique_ptr<EngineCore>(
      new EngineCore(std::move(backend), std::move(detokenizer), options, num_blocks, max_model_len));
}

EngineCore::EngineCore(std::unique_ptr<Backend> backend, std::shared_ptr<const Detokenizer> detokenizer,
                       const EngineOptions& options, int num_blocks, int max_model_len)
    : backend_(std::move(backend)),
      detokenizer_(std::move(detokenizer)),
      options_(options),
      max_model_len_(max_model_len),
      kv_(num_blocks, options.block_size, options.enable_prefix_caching),
      scheduler_(SchedulerConfig{options.max_num_batched_tokens, options.max_num_seqs}, &kv_),
      builder_(&kv_),
      processor_(std::vector<int32_t>(backend_->model_config().eos_token_ids.begin(),
                                      backend_->model_config().eos_token_ids.end())),
      seed_rng_(options.seed) {}

Status EngineCore::validate(const GenerationRequest& r) const {
  if (requests_.count(r.request_id)) return invalid_argument("request_id '{}' is already in use", r.request_id);
  return validate_params(r);
}

Status EngineCore::validate_params(const GenerationRequest& r) const {
  if (r.request_id.empty()) return invalid_argument("request_id must not be empty");
  // PD decode: the client hands back kv_transfer_params; the connector
  // refuses ones it cannot trust (mistyped, unsigned, altered, another host).
  if (kv_connector_ && wants_remote_prefill(r.kv_transfer_params)) {
    BATON_RETURN_IF_ERROR(kv_connector_->check_transfer_params(r.kv_transfer_params));
  }
  if (r.prompt_ids.empty()) return invalid_argument("the prompt is empty");
  const int vocab = backend_->model_config().vocab_size;
  for (size_t i = 0; i < r.prompt_ids.size(); ++i) {
    if (r.prompt_ids[i] < 0 || r.prompt_ids[i] >= vocab) {
      return invalid_argument("prompt token {} at position {} is outside the vocabulary [0, {})", r.prompt_ids[i], i,
                              vocab);
    }
  }
  for (int32_t t : r.stop_token_ids) {
    if (t < 0 || t >= vocab) return invalid_argument("stop_token_id {} is outside the vocabulary [0, {})", t, vocab);
  }
  if (r.max_tokens < 1) return invalid_argument("max_tokens must be at least 1, got {}", r.max_tokens);
  if (r.min_tokens < 0 || r.min_tokens > r.max_tokens) {
    return invalid_argument("min_tokens must be in [0, max_tokens={}], got {}", r.max_tokens, r.min_tokens);
  }
  const SamplingParams& s = r.sampling;
  // The backends' own check (temperature, top_p, top_k, min_p, the
  // penalties, logit_bias's order and values), then the API's narrower ranges.
  BATON_RETURN_IF_ERROR(validate_sampling_params(s));
  if (!(s.presence_penalty >= -2.0f && s.presence_penalty <= 2.0f)) {
    return invalid_argument("presence_penalty must be in [-2, 2], got {}", s.presence_penalty);
  }
  if (!(s.frequency_penalty >= -2.0f && s.frequency_penalty <= 2.0f)) {
    return invalid_argument("frequency_penalty must be in [-2, 2], got {}", s.frequency_penalty);
  }
  if (s.num_logprobs > kMaxLogprobs) {
    return invalid_argument("logprobs must be at most {}, got {}", kMaxLogprobs, s.num_logprobs);
  }
  for (const auto& [id, bias] : s.logit_bias)
    if (id >= vocab) return invalid_argument("logit_bias token {} is outside the vocabulary [0, {})", id, vocab);
  for (const std::string& stop : r.stop) {
    if (stop.empty()) return invalid_argument("a stop string must not be empty");
  }
  if (!r.stop.empty() && !detokenizer_) {
    return invalid_argument("stop strings need a tokenizer, and this engine has none");
  }
  const int64_t total = static_cast<int64_t>(r.prompt_ids.size()) + r.max_tokens;
  if (static_cast<int64_t>(r.prompt_ids.size()) >= max_model_len_ || total > max_model_len_) {
    return invalid_argument(
        "the prompt ({} tokens) plus max_tokens ({}) is {} tokens, beyond the model's context of {} "
        "tokens (max_model_len)",
        r.prompt_ids.size(), r.max_tokens, total, max_model_len_);
  }
  // The last sampled token is never fed back: it needs no KV slot.
  if (kv_.num_blocks_for(total - 1) > kv_.num_blocks()) {
    return invalid_argument(
        "the prompt ({} tokens) plus max_tokens ({}) needs {} KV blocks, more than the whole cache "
        "({} blocks of {} tokens)",
        r.prompt_ids.size(), r.max_tokens, kv_.num_blocks_for(total - 1), kv_.num_blocks(), kv_.block_size());
  }
  return Status::ok();
}

Status EngineCore::add_request(GenerationRequest request) {
  BATON_RETURN_IF_ERROR(validate(request));
  if (Status h = backend_->health(); !h.is_ok()) return unavailable("the engine has stopped: {}", h.message());
  const uint64_t seed = request.sampling.seed ? *request.sampling.seed : seed_rng_();
  auto r = std::make_unique<Request>(next_key_++, std::move(request), seed, monotonic_s());
  if (r->params.min_tokens > 0) {
    if (!r->params.ignore_eos) r->banned_before_min_tokens = processor_.eos_token_ids();
    for (int32_t t : r->params.stop_token_ids) r->banned_before_min_tokens.push_back(t);
  }
  // Stop strings are matched on text, so they need a stream even without detokenize.
  if (detokenizer_ && (r->params.detokenize || !r->params.stop.empty()))
    r->detok = detokenizer_->open_stream(r->params.prompt_ids, r->params.skip_special_tokens);
  if (kv_connector_ && wants_remote_prefill(r->params.kv_transfer_params)) r->remote_kv = RemoteKvState::kPending;
  Request* raw = r.get();
  requests_.emplace(raw->id(), std::move(r));
  scheduler_.add_request(raw);
  return Status::ok();
}

void EngineCore::finish(Request& r, FinishReason reason, double now_s) {
  if (r.finish_reason == FinishReason::kNone) r.finish_reason = reason;
  ++stats_.num_requests_finished;
  if (r.finish_reason == FinishReason::kAbort) ++stats_.num_requests_aborted;
  if (kv_connector_) {
    if (r.remote_kv == RemoteKvState::kLoading) {
      // A pull may still write into the blocks: the connector gives them
      // back once it has stopped.
      kv_connector_->cancel_load(r.id(), kv_.detach(r.key));
    } else if (r.remote_kv == RemoteKvState::kPending) {
      // Never pulled: the prefill's lease need not wait for its expiry.
      kv_connector_->abandon_load(r.id(), r.params.kv_transfer_params);
    } else if (r.kv_stream == KvStreamState::kOpen && r.finish_reason == FinishReason::kAbort) {
      // A reader may be copying the streamed blocks: the connector keeps
      // those it must and returns the rest.
      r.kv_stream = KvStreamState::kStopped;
      kv_.release_detached(kv_connector_->on_prefill_stopped(r.id(), "it was aborted", kv_.detach(r.key)));
    } else if (r.kv_stream == KvStreamState::kStopped) {
      // Its stream was stopped (preempted): nobody holds a lease on it.
    } else if (r.finish_reason != FinishReason::kAbort && wants_remote_decode(r.params.kv_transfer_params)) {
      // PD prefill: publish the prompt's full blocks, keep them under a lease.
      const int num_prompt = r.num_prompt_tokens();
      kv_.cache_blocks(r.key, r.all_token_ids, std::min(r.num_computed_tokens, num_prompt));
      r.kv_transfer_out = kv_connector_->on_prefill_finished(r.id(), num_prompt, kv_.detach(r.key));
    }
  }
  scheduler_.finish_request(&r);
  r.finished_time_s = now_s;
}

void EngineCore::fail_step(const SchedulerOutput& out, const Status& error, std::vector<RequestOutput>& outs) {
  BATON_LOG_ERROR("engine step failed: {}", error.to_string());
  const double now = monotonic_s();
  for (const ScheduledSeq& s : out.seqs) {
    Request& r = *s.request;
    processor_.flush_text(r);
    finish(r, FinishReason::kAbort, now);
    RequestOutput o = take_output(r);
    o.error = error.to_string();
    outs.push_back(std::move(o));
    requests_.erase(r.id());
  }
}

void EngineCore::fail_all_if_broken(std::vector<RequestOutput>& outs) {
  const Status health = backend_->health();
  if (health.is_ok()) return;
  std::vector<std::string> ids;
  for (const auto& [id, request] : requests_) ids.push_back(id);
  for (const std::string& id : ids) {
    std::optional<RequestOutput> o = abort_request(id);
    if (!o) continue;
    o->error = health.to_string();
    outs.push_back(std::move(*o));
  }
}

RequestOutput EngineCore::take_output(Request& r) {
  RequestOutput o = processor_.take_output(r);
  if (!r.kv_transfer_out.is_null()) o.kv_transfer_params = std::move(r.kv_transfer_out);
  return o;
}

void EngineCore::apply_kv_events(std::vector<RequestOutput>& outs) {
  KvConnectorEvents ev = kv_connector_->poll();
  for (const std::vector<int>& ids : ev.blocks_to_release) kv_.release_detached(ids);
  for (const KvLoadResult& res : ev.loads_done) finish_load(res.request_id, res.status, outs);
}

void EngineCore::start_loads(const SchedulerOutput& out, std::vector<RequestOutput>& outs) {
  for (Request* r : out.remote_loads) {
    KvLoadRequest load;
    load.request_id = r->id();
    load.kv_transfer_params = r->params.kv_transfer_params;
    const std::span<const int> ids = kv_.block_ids(r->key);
    load.local_block_ids.assign(ids.begin(), ids.end());
    load.num_prompt_tokens = r->num_prompt_tokens();
    load.num_local_tokens = r->num_computed_tokens;
    load.num_tokens_to_load = r->num_prompt_tokens() - 1;
    Status st = kv_connector_->start_load(load);
    if (!st.is_ok()) finish_load(load.request_id, st, outs);  // may erase r
  }
}

void EngineCore::finish_load(const std::string& request_id, const Status& status, std::vector<RequestOutput>& outs) {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return;  // aborted meanwhile: its blocks come back through poll()
  Request& r = *it->second;
  if (r.remote_kv != RemoteKvState::kLoading) return;
  r.remote_kv = RemoteKvState::kDone;
  if (status.is_ok()) {
    // Every prompt token but the last has its KV: the decode side computes
    // that one and samples the first output token, as agg would.
    r.num_computed_tokens = r.num_prompt_tokens() - 1;
    kv_.cache_blocks(r.key, r.all_token_ids, r.num_computed_tokens);
    scheduler_.resume_after_load(&r);
    return;
  }
  if (kv_connector_->load_failure_policy() == KvLoadFailurePolicy::kRecompute) {
    BATON_LOG_WARN("request '{}': {}; recomputing its prompt locally", request_id, status.to_string());
    scheduler_.resume_after_load(&r);  // from its local prefix hit
    return;
  }
  processor_.flush_text(r);
  finish(r, FinishReason::kAbort, monotonic_s());
  RequestOutput o = take_output(r);
  o.error = "KV transfer failed: " + status.to_string();
  outs.push_back(std::move(o));
  requests_.erase(it);
}

void EngineCore::open_kv_streams(const SchedulerOutput& out, std::vector<RequestOutput>& outs) {
  for (Request* r : out.preempted) {
    if (r->kv_stream != KvStreamState::kOpen) continue;
    // Its blocks are already free: a reader must not trust what it read.
    r->kv_stream = KvStreamState::kStopped;
    kv_.release_detached(kv_connector_->on_prefill_stopped(r->id(), "it was preempted", {}));
  }
  for (const ScheduledSeq& s : out.seqs) {
    Request& r = *s.request;
    if (r.kv_stream != KvStreamState::kNone || !wants_stream_kv(r.params.kv_transfer_params)) continue;
    // Before its first chunk computes, so that the decode side connects
    // meanwhile: the lease starts with the blocks a prefix hit filled.
    const std::span<const int> ids = kv_.block_ids(r.key);
    Json params = kv_connector_->on_prefill_progress(r.id(), r.num_prompt_tokens(), r.num_computed_tokens,
                                                     std::vector<int>(ids.begin(), ids.end()));
    if (params.is_null()) continue;
    r.kv_stream = KvStreamState::kOpen;
    RequestOutput o;
    o.request_id = r.id();
    o.num_prompt_tokens = r.num_prompt_tokens();
    o.kv_transfer_params = std::move(params);
    outs.push_back(std::move(o));
  }
}

void EngineCore::publish_kv_streams(const SchedulerOutput& out) {
  for (const ScheduledSeq& s : out.seqs) {
    Request& r = *s.request;
    if (r.kv_stream != KvStreamState::kOpen) continue;
    const std::span<const int> ids = kv_.block_ids(r.key);
    kv_connector_->on_prefill_progress(r.id(), r.num_prompt_tokens(),
                                       std::min(r.num_computed_tokens, r.num_prompt_tokens()),
                                       std::vector<int>(ids.begin(), ids.end()));
  }
}

std::vector<RequestOutput> EngineCore::step() {
  std::vector<RequestOutput> outs;
  if (!begin_step(outs)) return outs;
  std::vector<RequestOutput> ran = end_step();
  outs.insert(outs.end(), std::make_move_iterator(ran.begin()), std::make_move_iterator(ran.end()));
  return outs;
}

bool EngineCore::begin_step(std::vector<RequestOutput>& outs) {
  BATON_CHECK(!in_flight_.has_value(), "begin_step() while a step is in flight");
  step_watch_.reset();
  if (kv_connector_) apply_kv_events(outs);
  SchedulerOutput out = scheduler_.schedule();
  if (!out.remote_loads.empty()) start_loads(out, outs);
  if (kv_connector_) open_kv_streams(out, outs);
  if (out.empty()) return false;
  builder_.build(out, step_input_);
  Status submitted = backend_->submit(step_input_);
  if (!submitted.is_ok()) {
    fail_step(out, submitted, outs);
    return false;
  }
  in_flight_.emplace(std::move(out));
  return true;
}

std::vector<RequestOutput> EngineCore::end_step() {
  BATON_CHECK(in_flight_.has_value(), "end_step() without begin_step()");
  SchedulerOutput out = std::move(*in_flight_);
  in_flight_.reset();
  std::vector<RequestOutput> outs;
  Result<StepOutput> res = backend_->wait();
  if (res.is_ok() && res->samples.size() != step_input_.samples.size()) {
    res = internal_error("backend returned {} samples for {} sampling rows", res->samples.size(),
                         step_input_.samples.size());
  }
  if (!res.is_ok()) {
    fail_step(out, res.status(), outs);
    fail_all_if_broken(outs);
    return outs;
  }
  scheduler_.update_after_step(out);
  if (kv_connector_) publish_kv_streams(out);
  const double now = monotonic_s();
  size_t k = 0;
  int num_sampled = 0;
  for (const ScheduledSeq& s : out.seqs) {
    if (!s.samples) continue;
    Request& r = *s.request;
    ++num_sampled;
    if (processor_.append_token(r, res->samples[k++], now)) finish(r, r.finish_reason, now);
    outs.push_back(take_output(r));
    if (r.is_finished()) requests_.erase(r.id());
  }
  stats_.num_steps += 1;
  stats_.num_preemptions = scheduler_.num_preemptions();
  stats_.prompt_tokens_total += out.num_prefill_tokens;
  stats_.generation_tokens_total += num_sampled;
  stats_.last_step_prefill_tokens = out.num_prefill_tokens;
  stats_.last_step_decode_tokens = out.num_decode_tokens;
  stats_.last_step_num_seqs = static_cast<int>(out.seqs.size());
  stats_.last_step_time_s = step_watch_.elapsed_s();
  stats_.step_time_total_s += stats_.last_step_time_s;
  return outs;
}

std::optional<RequestOutput> EngineCore::abort_request(const std::string& request_id) {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return std::nullopt;
  Request& r = *it->second;
  r.finish_reason = FinishReason::kAbort;
  processor_.flush_text(r);
  finish(r, FinishReason::kAbort, monotonic_s());
  RequestOutput o = take_output(r);
  requests_.erase(it);
  return o;
}

int64_t EngineCore::waiting_prompt_tokens() const {
  int64_t n = 0;
  for (const Request* r : scheduler_.waiting()) n += std::max(0, r->num_prompt_tokens() - r->num_computed_tokens);
  return n;
}

EngineStats EngineCore::stats() const {
  EngineStats s = stats_;
  s.num_running = scheduler_.num_running();
  s.num_waiting = scheduler_.num_waiting();
  const KvCacheCounters c = kv_.counters();
  s.num_kv_blocks_total = c.num_blocks_total;
  s.num_kv_blocks_free = c.num_blocks_free;
  s.num_kv_blocks_cached = c.num_blocks_cached;
  s.kv_usage = kv_.usage();
  s.prefix_cache_queries = c.prefix_cache_queries;
  s.prefix_cache_hits = c.prefix_cache_hits;
  return s;
}

}  // namespace baton
