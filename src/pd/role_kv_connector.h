// RoleKvConnector: the KvConnector of an instance whose role can change at
// run time (docs/pd.md "Roles that follow the load"). The engine core holds
// this one object for its whole life; it forwards every call to the
// PdKvConnector of the current role (prefill or decode), or answers as an
// instance without PD (agg). RoleSwitcher (instance/role_switcher.h) swaps
// the inner connector once the old role has drained; the old one is polled
// until it is quiet and then stopped.
//
// Threads: as KvConnector. swap() may be called on any thread; a call that
// the engine thread has started on the old connector finishes there.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "common/metrics_registry.h"
#include "pd/pd_kv_connector.h"

namespace baton {

class RoleKvConnector : public KvConnector {
 public:
  // `initial`: the first role's connector; null for agg.
  explicit RoleKvConnector(std::shared_ptr<PdKvConnector> initial);
  ~RoleKvConnector() override;

  // The connector of the current role (null: agg).
  std::shared_ptr<PdKvConnector> current() const;
  PdRole role() const;
  // Makes `next` (null: agg) the current connector. The old one gets no new
  // calls; poll() still drains its events. Returns the old one (the caller
  // stops it once it is quiet: quiet()).
  std::shared_ptr<PdKvConnector> swap(std::shared_ptr<PdKvConnector> next);
  // True when `c` holds nothing: no lease, no pull, no queued event.
  static bool quiet(const PdKvConnector& c) { return !c.has_timers() && !c.has_events(); }
  // Each connector that becomes current adds its series to `registry` (it
  // must outlive this one); the current one now.
  void attach_metrics(MetricsRegistry& registry);
  // Stops the current connector (after the engine thread has stopped).
  void stop();
  // The current connector's (prefill: frees a lease); NOT_FOUND otherwise.
  Status release_lease(const Json& params);

  // KvConnector.
  void set_wakeup(std::function<void()> wakeup) override;
  bool has_events() const override;
  bool has_timers() const override;
  Json on_prefill_finished(const std::string& request_id, int num_prompt_tokens, std::vector<int> block_ids) override;
  Json on_prefill_progress(const std::string& request_id, int num_prompt_tokens, int num_computed_tokens,
                           const std::vector<int>& block_ids) override;
  std::vector<int> on_prefill_stopped(const std::string& request_id, const std::string& why,
                                      std::vector<int> block_ids) override;
  Status check_transfer_params(const Json& params) const override;
  Status start_load(const KvLoadRequest& load) override;
  void cancel_load(const std::string& request_id, std::vector<int> block_ids) override;
  KvLoadFailurePolicy load_failure_policy() const override;
  void abandon_load(const std::string& request_id, const Json& kv_transfer_params) override;
  KvConnectorEvents poll() override;

 private:
  // The current connector, or null (agg).
  std::shared_ptr<PdKvConnector> get() const;
  // Blocks handed to an agg instance's connector: freed by the next poll().
  void give_back(std::vector<int> block_ids);

  mutable std::mutex mu_;
  std::shared_ptr<PdKvConnector> current_;
  std::vector<std::shared_ptr<PdKvConnector>> retired_;  // swapped out, polled until stopped
  std::vector<std::vector<int>> to_release_;
  std::function<void()> wakeup_;
  MetricsRegistry* registry_ = nullptr;
};

}  // namespace baton
