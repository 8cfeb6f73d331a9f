// One engine instance in the simulation: the engine's own Scheduler and
// KvCacheManager (the same code that serves), with a step-time model in
// place of the backend. A step is split as the engine splits it: begin_step
// schedules (and starts KV pulls) at its start time, end_step applies what it
// computed at its end, when its sampled tokens exist.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/request.h"
#include "engine/scheduler.h"
#include "kv/kv_cache_manager.h"
#include "planner/engine_warmup.h"
#include "planner/step_time_model.h"

namespace baton::planner {

enum class SimRole { kAgg, kPrefill, kDecode };
const char* sim_role_name(SimRole role);

struct SimInstanceOptions {
  SimRole role = SimRole::kAgg;
  SchedulerConfig scheduler;
  int num_kv_blocks = 0;
  int block_size = 16;
  bool prefix_caching = true;
};

// What one step did, reported at its end.
struct SimStepEvents {
  struct Token {
    uint64_t key = 0;
    bool finished = false;  // the request's last token (a prefill instance: its prompt is done)
  };
  std::vector<Token> tokens;        // one per request that sampled, in batch order
  std::vector<uint64_t> preempted;  // requests sent back to the queue
};

class SimInstance {
 public:
  SimInstance(SimInstanceOptions options, const StepTimeModel* model);
  SimInstance(const SimInstance&) = delete;
  SimInstance& operator=(const SimInstance&) = delete;

  SimRole role() const { return options_.role; }
  // The process's first-use costs (engine_warmup.h): each step pays what
  // `model` says its new shapes cost, and `warmth` keeps the shapes met
  // (it outlives the instance: a sweep's process serves several trials).
  // Without them (the default) the instance is warm: steady state.
  void set_warmth(const FirstUseModel* model, EngineWarmth* warmth) {
    first_use_ = model;
    warmth_ = warmth;
  }
  // Queues a request. A decode instance's request (remote_kv) is admitted
  // with blocks for its whole prompt and then waits for its pull; the
  // others compute their prompt. A prefill instance runs max_tokens = 1 and
  // keeps the prompt's blocks (a lease) until release_lease().
  void add(uint64_t key, std::vector<int32_t> prompt_ids, int max_tokens, bool remote_kv);

  // Starts a step at `now_s` when there is work: its duration. `loads`
  // gets the keys of decode requests admitted this step whose KV pull
  // starts now, with the number of tokens to pull.
  struct Load {
    uint64_t key = 0;
    int num_tokens = 0;  // pulled (the local prefix-cache hit is not)
  };
  std::optional<double> begin_step(std::vector<Load>* loads);
  bool in_step() const { return in_flight_.has_value(); }
  SimStepEvents end_step();

  // A decode request's pull ended: it joins the running requests with
  // every prompt token but the last computed (as the engine does).
  void finish_load(uint64_t key);
  // A prefill instance: the decode side has read the request's blocks.
  void release_lease(uint64_t key);

  // Load, as the router and KV events would see it.
  int num_running() const { return scheduler_.num_running(); }
  int num_waiting() const { return scheduler_.num_waiting(); }
  int num_loading() const { return scheduler_.num_loading(); }
  int num_requests() const { return static_cast<int>(requests_.size()); }
  double kv_usage() const { return kv_.usage(); }
  int64_t num_preemptions() const { return scheduler_.num_preemptions(); }
  int64_t num_steps() const { return num_steps_; }
  double busy_s() const { return busy_s_; }
  const KvCacheManager& kv() const { return kv_; }

 private:
  void finish(Request& r);
  StepShape shape_of(const SchedulerOutput& out) const;
  StepDims dims_of(const SchedulerOutput& out) const;

  SimInstanceOptions options_;
  const StepTimeModel* model_;
  const FirstUseModel* first_use_ = nullptr;
  EngineWarmth* warmth_ = nullptr;
  KvCacheManager kv_;
  Scheduler scheduler_;
  std::unordered_map<uint64_t, std::unique_ptr<Request>> requests_;
  std::unordered_map<uint64_t, std::vector<int>> leases_;  // prefill: blocks held for the decode side
  std::optional<SchedulerOutput> in_flight_;
  int64_t num_steps_ = 0;
  double busy_s_ = 0;
};

}  // namespace baton::planner
