#include "engine/scheduler.h"

#include <algorithm>

#include "common/check.h"
#include "common/clock.h"

namespace baton {

Scheduler::Scheduler(SchedulerConfig config, KvCacheManager* kv) : config_(config), kv_(kv) {
  BATON_CHECK(config_.max_num_batched_tokens > 0 && config_.max_num_seqs > 0, "scheduler limits must be positive");
}

void Scheduler::add_request(Request* request) {
  request->status = RequestStatus::kWaiting;
  waiting_.push_back(request);
}

void Scheduler::preempt(Request* request, SchedulerOutput& out) {
  kv_->free(request->key);
  request->status = RequestStatus::kPreempted;
  request->num_computed_tokens = 0;
  ++request->num_preemptions;
  ++num_preemptions_;
  out.preempted.push_back(request);
  waiting_.push_front(request);
}

namespace {

void account(SchedulerOutput& out, Request* r, int num_new) {
  const bool samples = r->num_computed_tokens + num_new == r->num_tokens();
  out.seqs.push_back({r, num_new, samples});
  out.num_scheduled_tokens += num_new;
  // A decode: one token past the prompt, computing the last sampled token.
  if (num_new == 1 && r->num_output_tokens() > 0 && samples) {
    ++out.num_decode_tokens;
  } else {
    out.num_prefill_tokens += num_new;
  }
}

}  // namespace

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  int budget = config_.max_num_batched_tokens;

  // 1. Running requests, in admission order.
  size_t index = 0;
  while (index < running_.size() && budget > 0) {
    Request* r = running_[index];
    const int num_new = std::min(r->num_tokens() - r->num_computed_tokens, budget);
    BATON_CHECK(num_new > 0, "running request {} has nothing to compute", r->id());
    bool allocated = false;
    while (true) {
      if (kv_->allocate_slots(r->key, r->num_computed_tokens, num_new)) {
        allocated = true;
        break;
      }
      // Out of blocks: preempt the newest running request (maybe r itself).
      Request* victim = running_.back();
      running_.pop_back();
      preempt(victim, out);
      if (victim == r) break;
    }
    if (!allocated) break;
    account(out, r, num_new);
    budget -= num_new;
    ++index;
  }

  // 2. Waiting requests, in arrival order (not in a step that preempted).
  // A request loading remote KV holds a sequence slot: it joins the running
  // ones when its pull ends, and max_num_seqs bounds them all.
  if (out.preempted.empty()) {
    while (!waiting_.empty() && budget > 0 &&
           static_cast<int>(running_.size() + loading_.size()) < config_.max_num_seqs) {
      Request* r = waiting_.front();
      if (r->remote_kv == RemoteKvState::kPending) {
        // PD decode: allocate the whole prompt now (a local prefix hit
        // shrinks the pull), then wait for the pull off the batch.
        ComputedBlocks hit = kv_->get_computed_blocks(r->key, r->all_token_ids);
        if (!kv_->allocate_slots(r->key, 0, r->num_tokens() - hit.num_tokens, &hit)) break;
        waiting_.pop_front();
        r->num_computed_tokens = hit.num_tokens;
        r->num_cached_tokens = hit.num_tokens;
        r->first_scheduled_time_s = monotonic_s();
        r->status = RequestStatus::kWaitingForRemoteKv;
        r->remote_kv = RemoteKvState::kLoading;
        loading_.push_back(r);
        out.remote_loads.push_back(r);
        continue;
      }
      ComputedBlocks computed;
      if (r->num_computed_tokens == 0) computed = kv_->get_computed_blocks(r->key, r->all_token_ids);
      const int num_new = std::min(r->num_tokens() - computed.num_tokens, budget);
      if (!kv_->allocate_slots(r->key, 0, num_new, &computed)) break;
      waiting_.pop_front();
      r->num_computed_tokens = computed.num_tokens;
      if (r->num_cached_tokens < 0) {
        r->num_cached_tokens = computed.num_tokens;
        r->first_scheduled_time_s = monotonic_s();
      }
      r->status = RequestStatus::kRunning;
      running_.push_back(r);
      account(out, r, num_new);
      budget -= num_new;
    }
  }
  return out;
}

void Scheduler::update_after_step(const SchedulerOutput& out) {
  for (const ScheduledSeq& s : out.seqs) {
    Request* r = s.request;
    if (r->is_finished()) continue;  // freed already
    r->num_computed_tokens += s.num_new_tokens;
    kv_->cache_blocks(r->key, r->all_token_ids, r->num_computed_tokens);
  }
}

void Scheduler::resume_after_load(Request* request) {
  auto it = std::find(loading_.begin(), loading_.end(), request);
  BATON_CHECK(it != loading_.end(), "request {} is not waiting for remote KV", request->id());
  loading_.erase(it);
  request->status = RequestStatus::kRunning;
  running_.push_back(request);
}

void Scheduler::finish_request(Request* request) {
  if (request->status == RequestStatus::kWaitingForRemoteKv) {
    auto it = std::find(loading_.begin(), loading_.end(), request);
    if (it != loading_.end()) loading_.erase(it);
  } else if (request->status == RequestStatus::kRunning) {
    auto it = std::find(running_.begin(), running_.end(), request);
    if (it != running_.end()) running_.erase(it);
  } else {
    auto it = std::find(waiting_.begin(), waiting_.end(), request);
    if (it != waiting_.end()) waiting_.erase(it);
  }
  kv_->free(request->key);
  request->status = RequestStatus::kFinished;
}

}  // namespace baton
