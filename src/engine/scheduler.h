// Capacity scheduling, vLLM V1 style: one token budget per step and a cap on
// running requests. Running requests first (a decode is one token, an
// unfinished prefill continues as a chunk), then waiting requests in arrival
// order while budget and KV blocks last. When blocks run out, the most
// recently admitted running request is preempted: its blocks are freed and it
// goes back to the front of the waiting queue, to be recomputed (prompt and
// output so far) later. The scheduler knows nothing of the device: batch
// building is InputBuilder's job.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "engine/request.h"
#include "kv/kv_cache_manager.h"

namespace baton {

struct SchedulerConfig {
  int max_num_batched_tokens = 8192;
  int max_num_seqs = 256;
};

struct ScheduledSeq {
  Request* request = nullptr;
  int num_new_tokens = 0;  // tokens computed this step, from request->num_computed_tokens
  bool samples = false;    // reaches the request's last token: samples the next one
};

struct SchedulerOutput {
  std::vector<ScheduledSeq> seqs;  // running requests first, then newly admitted
  std::vector<Request*> preempted;
  // PD decode side: requests admitted this step whose prompt KV is to be
  // pulled from a prefill instance (blocks allocated, nothing computed).
  std::vector<Request*> remote_loads;
  int num_scheduled_tokens = 0;
  int num_prefill_tokens = 0;  // prompt (or recomputed) tokens
  int num_decode_tokens = 0;   // one per request that is past its prefill
  bool empty() const { return seqs.empty(); }
};

class Scheduler {
 public:
  Scheduler(SchedulerConfig config, KvCacheManager* kv);

  const SchedulerConfig& config() const { return config_; }
  // Appends to the back of the waiting queue.
  void add_request(Request* request);
  // Picks this step's batch and allocates its KV slots.
  SchedulerOutput schedule();
  // After the backend ran `out`: advances num_computed_tokens and publishes
  // the newly full blocks to the prefix cache. Sampled tokens are appended
  // by the caller before or after; only computed tokens are cached.
  void update_after_step(const SchedulerOutput& out);
  // Removes a request (finished or aborted) from its queue and frees its blocks.
  void finish_request(Request* request);
  // PD decode side: a request whose pull ended (loaded, or to be recomputed
  // from request->num_computed_tokens) joins the running requests.
  void resume_after_load(Request* request);

  int num_running() const { return static_cast<int>(running_.size()); }
  int num_waiting() const { return static_cast<int>(waiting_.size()); }
  bool has_requests() const { return !running_.empty() || !waiting_.empty(); }
  int num_loading() const { return static_cast<int>(loading_.size()); }
  int64_t num_preemptions() const { return num_preemptions_; }
  const std::vector<Request*>& running() const { return running_; }
  const std::deque<Request*>& waiting() const { return waiting_; }

 private:
  void preempt(Request* request, SchedulerOutput& out);

  SchedulerConfig config_;
  KvCacheManager* kv_;
  std::vector<Request*> running_;  // in admission order: the back is preempted first
  std::deque<Request*> waiting_;
  std::vector<Request*> loading_;  // PD decode: holding blocks, waiting for a pull
  int64_t num_preemptions_ = 0;
};

}  // namespace baton
