#include "planner/sim_instance.h"

#include <algorithm>

#include "common/check.h"

namespace baton::planner {

const char* sim_role_name(SimRole role) {
  switch (role) {
    case SimRole::kAgg: return "agg";
    case SimRole::kPrefill: return "prefill";
    case SimRole::kDecode: return "decode";
  }
  return "?";
}

SimInstance::SimInstance(SimInstanceOptions options, const StepTimeModel* model)
    : options_(options),
      model_(model),
      kv_(options.num_kv_blocks, options.block_size, options.prefix_caching),
      scheduler_(options.scheduler, &kv_) {}

void SimInstance::add(uint64_t key, std::vector<int32_t> prompt_ids, int max_tokens, bool remote_kv) {
  GenerationRequest g;
  g.request_id = std::to_string(key);
  g.prompt_ids = std::move(prompt_ids);
  g.max_tokens = options_.role == SimRole::kPrefill ? 1 : max_tokens;
  g.ignore_eos = true;
  g.detokenize = false;
  auto r = std::make_unique<Request>(key, std::move(g), /*seed=*/0, /*arrival_time_s=*/0.0);
  if (remote_kv && options_.role == SimRole::kDecode) r->remote_kv = RemoteKvState::kPending;
  Request* raw = r.get();
  requests_[key] = std::move(r);
  scheduler_.add_request(raw);
}

StepShape SimInstance::shape_of(const SchedulerOutput& out) const {
  StepShape shape;
  for (const ScheduledSeq& s : out.seqs) {
    const Request& r = *s.request;
    if (s.samples && r.num_output_tokens() == 0) ++shape.first_token_seqs;
    if (s.num_new_tokens == 1) {  // a decode, or a decode side's last prompt token: one query over the context
      ++shape.decode_seqs;
      shape.decode_context_tokens += r.num_computed_tokens + 1;
    } else {
      shape.prefill_tokens += s.num_new_tokens;
      shape.prefill_attention_pairs += causal_pairs(r.num_computed_tokens, s.num_new_tokens);
    }
  }
  return shape;
}

StepDims SimInstance::dims_of(const SchedulerOutput& out) const {
  StepDims d;
  d.num_seqs = static_cast<int>(out.seqs.size());
  for (const ScheduledSeq& s : out.seqs) {
    d.num_tokens += s.num_new_tokens;
    if (s.samples) ++d.num_samples;
    const int tokens = s.request->num_computed_tokens + s.num_new_tokens;
    d.max_blocks_per_seq = std::max(d.max_blocks_per_seq, (tokens + options_.block_size - 1) / options_.block_size);
  }
  return d;
}

std::optional<double> SimInstance::begin_step(std::vector<Load>* loads) {
  BATON_CHECK(!in_flight_.has_value(), "begin_step while a step is in flight");
  SchedulerOutput out = scheduler_.schedule();
  for (Request* r : out.remote_loads) {
    // The engine pulls every prompt token but the last, less the local hit.
    loads->push_back({r->key, std::max(0, r->num_prompt_tokens() - 1 - r->num_computed_tokens)});
  }
  if (out.empty()) return std::nullopt;
  double duration = model_->step_s(shape_of(out));
  if (first_use_ != nullptr && warmth_ != nullptr)
    duration += first_use_->first_use_s(dims_of(out), duration, *warmth_);
  in_flight_.emplace(std::move(out));
  ++num_steps_;
  busy_s_ += duration;
  return duration;
}

SimStepEvents SimInstance::end_step() {
  BATON_CHECK(in_flight_.has_value(), "end_step without begin_step");
  SchedulerOutput out = std::move(*in_flight_);
  in_flight_.reset();
  SimStepEvents events;
  for (Request* r : out.preempted) events.preempted.push_back(r->key);
  scheduler_.update_after_step(out);
  for (const ScheduledSeq& s : out.seqs) {
    if (!s.samples) continue;
    Request& r = *s.request;
    if (r.is_finished()) continue;
    // Any token id: the simulation never reads it, only counts it.
    r.all_token_ids.push_back(0);
    r.output_ids.push_back(0);
    const bool done = r.num_output_tokens() >= r.params.max_tokens;
    events.tokens.push_back({r.key, done});
    if (done) finish(r);
  }
  return events;
}

void SimInstance::finish(Request& r) {
  if (options_.role == SimRole::kPrefill) {
    const int num_prompt = r.num_prompt_tokens();
    kv_.cache_blocks(r.key, r.all_token_ids, std::min(r.num_computed_tokens, num_prompt));
    leases_[r.key] = kv_.detach(r.key);
  }
  scheduler_.finish_request(&r);
  requests_.erase(r.key);
}

void SimInstance::finish_load(uint64_t key) {
  auto it = requests_.find(key);
  BATON_CHECK(it != requests_.end(), "finish_load of unknown request {}", key);
  Request& r = *it->second;
  r.remote_kv = RemoteKvState::kDone;
  r.num_computed_tokens = r.num_prompt_tokens() - 1;
  kv_.cache_blocks(r.key, r.all_token_ids, r.num_computed_tokens);
  scheduler_.resume_after_load(&r);
}

void SimInstance::release_lease(uint64_t key) {
  auto it = leases_.find(key);
  if (it == leases_.end()) return;
  kv_.release_detached(it->second);
  leases_.erase(it);
}

}  // namespace baton::planner
