// Roles that follow the load, on the instance's side (docs/pd.md "Roles
// that follow the load"): an instance started with role switching on
// changes between prefill, decode and agg without a restart. A switch
// drains, then flips:
//
//   drain: requests that need the old role's KV connector (do_remote_decode
//          on a prefill, do_remote_prefill on a decode) are refused (503)
//          from now on; those running finish, and the old connector becomes
//          quiet (every lease ended by "done", release or expiry; no pull
//          running). Plain requests are served in every role throughout.
//   flip:  the new role's connector (built when the switch started) takes
//          the old one's place in the engine (pd/role_kv_connector.h); the
//          old one stops. Engine, weights and KV cache stay.
//
// A drain that does not finish within its timeout ends the switch as failed,
// naming what was still held, and the instance keeps its old role.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/metrics_registry.h"
#include "pd/role_kv_connector.h"
#include "server/role_admin.h"

namespace baton::instance {

// One switch of a RoleSwitcher: the one in flight, or the last. (At namespace
// scope: clang cannot default-construct a nested struct with member
// initializers inside an std::optional member of its enclosing class.)
struct RoleSwitchRecord {
  PdRole from = PdRole::kAgg, to = PdRole::kAgg;
  std::string state;  // draining | done | failed
  std::string error;  // failed: why
  Stopwatch watch;
  double elapsed_s = 0;  // when it ended
  double drain_timeout_s = 0;
};

class RoleSwitcher : public RoleAdmin, public std::enable_shared_from_this<RoleSwitcher> {
 public:
  // Builds the KV connector of a prefill or decode role.
  using ConnectorFactory = std::function<Result<std::shared_ptr<PdKvConnector>>(PdRole role)>;

  static std::shared_ptr<RoleSwitcher> create(std::shared_ptr<RoleKvConnector> connector, ConnectorFactory factory,
                                              double default_drain_timeout_s);
  ~RoleSwitcher() override;  // stop()

  PdRole role() const;
  // Called on the switch's thread right after each flip, with the new role
  // (the instance re-registers in discovery under it).
  void set_on_flip(std::function<void(PdRole)> on_flip);
  // Counts each ended switch in `registry` (which must outlive this) as
  // baton:role_switches_total{from, to, result}.
  void attach_metrics(MetricsRegistry& registry);
  // Ends a drain in flight (as failed) and joins its thread. Idempotent.
  void stop();

  // RoleAdmin.
  Result<std::shared_ptr<void>> admit(const Json& kv_transfer_params) override;
  Json status() const override;
  Result<Json> request_switch(const Json& body) override;
  std::string role_name() const override { return pd_role_name(role()); }

 private:
  RoleSwitcher(std::shared_ptr<RoleKvConnector> connector, ConnectorFactory factory, double default_drain_timeout_s);

  using Switch = RoleSwitchRecord;

  void run(std::shared_ptr<PdKvConnector> next, double drain_timeout_s);
  // What the drain still waits for ("" when nothing). Under mu_.
  std::string drain_outstanding() const;
  void release(PdRole kind);
  Json status_locked() const;

  const std::shared_ptr<RoleKvConnector> connector_;
  const ConnectorFactory factory_;
  const double default_drain_timeout_s_;
  std::function<void(PdRole)> on_flip_;  // under mu_
  MetricsRegistry* metrics_ = nullptr;   // under mu_
  std::mutex request_mu_;                // one request_switch at a time
  mutable std::mutex mu_;
  std::condition_variable cv_;
  PdRole role_;
  int live_[3] = {0, 0, 0};       // admitted requests by the role they need (agg: plain)
  std::optional<Switch> switch_;  // the one in flight or the last
  int64_t num_switches_ = 0, num_failed_switches_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

// The role a request needs: prefill (do_remote_decode), decode
// (do_remote_prefill), or agg (plain: any role serves it).
PdRole role_needed(const Json& kv_transfer_params);

}  // namespace baton::instance
