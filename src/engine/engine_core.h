// The synchronous engine: requests in, one step() at a time, outputs out.
// step() = schedule (Scheduler) -> build the batch (InputBuilder) -> run it
// (Backend::submit, then wait) -> append tokens and check stops (OutputProcessor) ->
// free finished requests' blocks at once. Not thread-safe: AsyncEngine owns
// one and drives it from its engine thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "common/clock.h"
#include "common/status.h"
#include "engine/detokenizer.h"
#include "engine/engine_options.h"
#include "engine/input_builder.h"
#include "engine/kv_connector.h"
#include "engine/output_processor.h"
#include "engine/request.h"
#include "engine/request_types.h"
#include "engine/scheduler.h"
#include "kv/kv_cache_manager.h"

namespace baton {

class EngineCore {
 public:
  // Sizes and allocates the KV cache (options.num_kv_blocks, else
  // kv_cache_bytes or the backend's available_kv_bytes() / kv_block_bytes)
  // and calls backend->init_kv_cache. `detokenizer` may be null: requests
  // then get token ids only (and stop strings are refused).
  static Result<std::unique_ptr<EngineCore>> create(std::unique_ptr<Backend> backend,
                                                    std::shared_ptr<const Detokenizer> detokenizer,
                                                    const EngineOptions& options);

  // Checks a request against the engine's limits without enqueueing it.
  Status validate(const GenerationRequest& request) const;
  // The same checks minus the request_id's uniqueness: they read only what
  // never changes after create(), so any thread may call this while the
  // engine thread steps.
  Status validate_params(const GenerationRequest& request) const;
  // Validates and enqueues at the back of the waiting queue.
  Status add_request(GenerationRequest request);
  // Runs one step; returns one output per request that produced tokens or
  // finished in it. Same as begin_step() then end_step().
  std::vector<RequestOutput> step();
  // step() in two halves, so that the caller can do host work while the
  // backend runs the batch (AsyncEngine delivers the previous step's outputs
  // there). begin_step() schedules, builds and submits the batch, puts the
  // outputs that need no forward pass (PD events, a failed submit) in `outs`,
  // and says whether a batch is in flight; end_step() waits for it and
  // returns its outputs. Between the two, nothing else may be called.
  bool begin_step(std::vector<RequestOutput>& outs);
  std::vector<RequestOutput> end_step();
  // Whether begin_step() returns while the batch still runs (a device
  // backend): only then is it worth holding outputs back to deliver them
  // during the next step (on the CPU that would delay them by a step).
  bool steps_overlap() const { return backend_->submit_is_async(); }
  // Aborts a live request: frees its blocks now and returns its final output
  // (finish_reason kAbort); nullopt if unknown.
  std::optional<RequestOutput> abort_request(const std::string& request_id);

  // Live requests, those waiting for remote KV (PD decode) included.
  bool has_unfinished_requests() const { return scheduler_.has_requests() || scheduler_.num_loading() > 0; }
  // Whether step() has work now: requests to schedule, or PD events to apply
  // (a finished pull, a lease ended). Requests waiting for remote KV alone
  // need no step.
  bool needs_step() const { return scheduler_.has_requests() || (kv_connector_ && kv_connector_->has_events()); }

  // PD (engine/kv_connector.h): set before the first request, on the thread
  // that will step. Without one, kv_transfer_params are ignored.
  void set_kv_connector(std::shared_ptr<KvConnector> connector) { kv_connector_ = std::move(connector); }
  KvConnector* kv_connector() const { return kv_connector_.get(); }
  int num_running() const { return scheduler_.num_running(); }
  int num_waiting() const { return scheduler_.num_waiting(); }
  EngineStats stats() const;
  KvCacheCounters kv_counters() const { return kv_.counters(); }
  int max_model_len() const { return max_model_len_; }
  int num_kv_blocks() const { return kv_.num_blocks(); }
  const EngineOptions& options() const { return options_; }
  Backend& backend() { return *backend_; }
  // The backend's health (Backend::health): any thread.
  Status health() const { return backend_->health(); }
  const KvCacheManager& kv_cache() const { return kv_; }
  // KV events (kv/kv_event.h): recorded once enabled, drained by the caller
  // after each step (AsyncEngine publishes them).
  void enable_kv_events() { kv_.set_record_events(true); }
  std::vector<KvEvent> take_kv_events() { return kv_.take_events(); }
  // Prompt tokens the waiting requests still have to compute.
  int64_t waiting_prompt_tokens() const;
  const Scheduler& scheduler() const { return scheduler_; }

 private:
  EngineCore(std::unique_ptr<Backend> backend, std::shared_ptr<const Detokenizer> detokenizer,
             const EngineOptions& options, int num_blocks, int max_model_len);
  void finish(Request& r, FinishReason reason, double now_s);
  void fail_step(const SchedulerOutput& out, const Status& error, std::vector<RequestOutput>& outs);
  // After a failed step whose backend is broken for good: every other live
  // request ends too, with the backend's error, instead of failing one step
  // at a time.
  void fail_all_if_broken(std::vector<RequestOutput>& outs);
  // PD: applies the connector's queued events; starts this step's pulls.
  void apply_kv_events(std::vector<RequestOutput>& outs);
  void start_loads(const SchedulerOutput& out, std::vector<RequestOutput>& outs);
  // PD prefill, streamed KV: starts the lease of each stream_kv request
  // scheduled for the first time (its params go out as an output of their
  // own) and stops those of preempted ones; after the step, publishes how
  // much of each open stream's prompt is computed.
  void open_kv_streams(const SchedulerOutput& out, std::vector<RequestOutput>& outs);
  void publish_kv_streams(const SchedulerOutput& out);
  void finish_load(const std::string& request_id, const Status& status, std::vector<RequestOutput>& outs);
  RequestOutput take_output(Request& r);

  std::unique_ptr<Backend> backend_;
  std::shared_ptr<const Detokenizer> detokenizer_;
  EngineOptions options_;
  int max_model_len_;
  KvCacheManager kv_;
  Scheduler scheduler_;
  InputBuilder builder_;
  OutputProcessor processor_;
  StepInput step_input_;                      // the batch in flight reads it until end_step()
  std::optional<SchedulerOutput> in_flight_;  // between begin_step() and end_step()
  Stopwatch step_watch_;
  std::unordered_map<std::string, std::unique_ptr<Request>> requests_;
  uint64_t next_key_ = 1;
  std::mt19937_64 seed_rng_;
  EngineStats stats_;
  std::shared_ptr<KvConnector> kv_connector_;
};

}  // namespace baton
