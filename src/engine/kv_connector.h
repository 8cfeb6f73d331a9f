// KvConnector: the engine's side of the PD handoff (DESIGN.md "PD handoff",
// docs/pd.md), vLLM V1's KV-connector split. The engine may not use
// kv_transfer, so it calls this interface and the pd layer implements it
// over the transfer engine (pd/pd_kv_connector.h: one class a role).
//
// Every call below except has_events() and set_wakeup() is made on the engine
// thread. All KvCacheManager mutations stay there: the connector never frees
// a block itself, it hands block ids back through poll() and the engine
// releases them. Notifications that arrive on other threads (a decode peer's
// "done" or "renew", a finished pull) are queued by the connector and drained
// by poll() at the start of each step.
//
//   prefill: a do_remote_decode request finishes -> the engine detaches its
//            blocks and calls on_prefill_finished (the lease starts there);
//            poll() returns the leases ended by "done" or by expiry.
//            Streamed KV (params "stream_kv": true): after every step that
//            computed part of such a prompt, on_prefill_progress (the first
//            call starts a lease still being computed and returns its params,
//            which the engine sends at once); an abort or a preemption calls
//            on_prefill_stopped; the normal end calls on_prefill_finished.
//   decode:  a do_remote_prefill request is admitted -> the engine allocates
//            its prompt's blocks and calls start_load; the request waits
//            (holding its blocks, not scheduled) until poll() returns its
//            result; an abort while loading calls cancel_load, and the
//            blocks come back through poll() once nothing writes into them.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace baton {

// What a decode instance does when a pull fails (--kv-load-failure-policy).
enum class KvLoadFailurePolicy {
  kFail,       // finish the request with an error naming the failure
  kRecompute,  // compute the prompt locally, as an ordinary prefill
};

struct KvLoadRequest {
  std::string request_id;
  Json kv_transfer_params;           // the request's (do_remote_prefill=true, remote_*)
  std::vector<int> local_block_ids;  // the request's block table, covering the prompt
  int num_prompt_tokens = 0;
  int num_local_tokens = 0;    // leading tokens the local prefix cache holds (whole blocks)
  int num_tokens_to_load = 0;  // num_prompt_tokens - 1: the last token is computed locally
};

struct KvLoadResult {
  std::string request_id;
  Status status;  // OK: tokens [0, num_tokens_to_load) are in the local blocks
};

struct KvConnectorEvents {
  std::vector<KvLoadResult> loads_done;
  std::vector<std::vector<int>> blocks_to_release;  // each: KvCacheManager::release_detached
};

class KvConnector {
 public:
  virtual ~KvConnector() = default;

  // Any thread: called (without the connector's locks held) when an event is
  // queued, so that a sleeping engine thread steps. Null clears it.
  virtual void set_wakeup(std::function<void()> wakeup) = 0;
  // Any thread: true when poll() has something to return now (a queued event
  // or an expired lease).
  virtual bool has_events() const = 0;
  // Any thread: true while leases are held or pulls run, so that the engine
  // thread wakes up at least every few milliseconds to expire leases.
  virtual bool has_timers() const = 0;

  // Prefill side. The request finished normally; `block_ids` (its whole
  // table, prompt blocks first) are detached and now owned by a lease.
  // Returns the kv_transfer_params of its final output.
  virtual Json on_prefill_finished(const std::string& request_id, int num_prompt_tokens,
                                   std::vector<int> block_ids) = 0;

  // Prefill side, streamed KV: `num_computed_tokens` of the prompt's
  // `num_prompt_tokens` now hold final KV in `block_ids` (the request's table
  // so far; it still owns them). The first call starts the lease and returns
  // its kv_transfer_params; later calls return null.
  virtual Json on_prefill_progress(const std::string& request_id, int num_prompt_tokens, int num_computed_tokens,
                                   const std::vector<int>& block_ids) {
    (void)request_id, (void)num_prompt_tokens, (void)num_computed_tokens, (void)block_ids;
    return Json();
  }
  // Prefill side, streamed KV: the prompt will not finish as published
  // (`why`: aborted, preempted). `block_ids` are detached and now the
  // connector's (empty after a preemption: those blocks were freed).
  // Returns the blocks the engine frees now (a reader may still be copying
  // the others: they come back through poll()).
  virtual std::vector<int> on_prefill_stopped(const std::string& request_id, const std::string& why,
                                              std::vector<int> block_ids) {
    (void)request_id, (void)why;
    return block_ids;
  }

  // Decode side, any thread: whether a request's kv_transfer_params may be
  // acted on (types, signature, host); an error refuses the request (400).
  virtual Status check_transfer_params(const Json& params) const {
    (void)params;
    return Status::ok();
  }
  // Decode side. Starts the pull; its result comes back through poll(). An
  // error returned here is a failed load (nothing started).
  virtual Status start_load(const KvLoadRequest& load) = 0;
  // The engine gives up a loading request (abort): the pull is cancelled and
  // `block_ids` come back through poll() once the pull has stopped.
  virtual void cancel_load(const std::string& request_id, std::vector<int> block_ids) = 0;
  virtual KvLoadFailurePolicy load_failure_policy() const = 0;
  // Decode side: a do_remote_prefill request ended before its pull started
  // (aborted while it waited for blocks): the prefill is told at once that
  // nobody will read its lease, instead of holding it until expiry.
  virtual void abandon_load(const std::string& request_id, const Json& kv_transfer_params) {
    (void)request_id, (void)kv_transfer_params;
  }

  // Both sides: drains finished loads and blocks to release (leases ended by
  // "done" or expiry, cancelled loads).
  virtual KvConnectorEvents poll() = 0;
};

// kv_transfer_params helpers (the OpenAI request's field).
inline bool kv_param_flag(const Json& p, const char* key) {
  if (!p.is_object()) return false;
  auto it = p.find(key);
  return it != p.end() && it->is_boolean() && it->get<bool>();
}
inline bool wants_remote_decode(const Json& p) { return kv_param_flag(p, "do_remote_decode"); }
inline bool wants_remote_prefill(const Json& p) { return kv_param_flag(p, "do_remote_prefill"); }
// Prefill side: publish the lease while the prompt computes (streamed KV).
inline bool wants_stream_kv(const Json& p) { return wants_remote_decode(p) && kv_param_flag(p, "stream_kv"); }

}  // namespace baton
