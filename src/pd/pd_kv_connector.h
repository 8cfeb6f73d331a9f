// PdKvConnector: the engine's KvConnector (engine/kv_connector.h) for a PD
// instance, over kv_transfer's TransferEngine and KvAgent; the protocol is in
// docs/pd.md. One implementation per role: PrefillKvConnector (leases) and
// DecodeKvConnector (pulls). create_pd_connector() builds the one a role
// needs; this base holds what both share: the engine's wakeup, stop, the
// agent's port, metrics and counters.
//
// Threads: the engine thread calls the KvConnector methods; the agent's and
// the loaders' threads only queue events and call the wakeup.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "common/json.h"
#include "common/metrics_registry.h"
#include "common/status.h"
#include "engine/kv_connector.h"
#include "kv/kv_layout.h"
#include "kv_transfer/transport.h"
#include "pd/pd_options.h"

namespace baton {

struct PdStats {
  int64_t num_leases = 0;         // live
  int64_t num_blocks_pinned = 0;  // under live leases
  int64_t num_lease_expirations = 0;
  int64_t num_leases_done = 0;  // ended by the decode side's "done"
  int64_t num_lease_renewals = 0;
  int64_t num_loads_ok = 0;
  int64_t num_loads_failed = 0;
  int64_t num_blocks_received = 0;
  int64_t num_blocks_local_hit = 0;  // not pulled: the local prefix cache had them
  int64_t num_leases_released = 0;   // ended by release_lease (the router gave up)
  int64_t num_grants_denied = 0;     // reads/done/renew/release refused: unknown lease, wrong token or blocks
};

class PdKvConnector : public KvConnector {
 public:
  ~PdKvConnector() override = default;

  // Adds the baton:kv_* series to `registry` (which must outlive this) and
  // keeps them current. Call once, before requests arrive.
  virtual void attach_metrics(MetricsRegistry& registry) = 0;
  // Stops the loaders (cancelling pulls) and the agent. Idempotent. Call it
  // after the engine thread has stopped.
  virtual void stop() = 0;
  // Prefill side, any thread: the router gave up on a request whose prefill
  // returned `params` (no decode came, or its client left): frees the lease
  // at once. The params' lease token must match (and, with a secret, their
  // signature); NOT_FOUND when the lease already ended.
  virtual Status release_lease(const Json& params) = 0;
  virtual PdStats stats() const = 0;
  virtual int kv_port() const = 0;  // the agent's port (prefill), else 0

  const std::string& engine_id() const { return options_.engine_id; }
  PdRole role() const { return options_.role; }

  void set_wakeup(std::function<void()> wakeup) override;
  KvLoadFailurePolicy load_failure_policy() const override { return options_.failure_policy; }

 protected:
  explicit PdKvConnector(PdConnectorOptions options) : options_(std::move(options)) {}
  // What either role needs before it is built: the KV allocated, a positive
  // lease and loader count, an engine id, and `role` (the class's own).
  static Status check_options(const KvMemory& memory, const PdConnectorOptions& options, PdRole role);
  // Calls the engine's wakeup (without any lock held).
  void wake();

  const PdConnectorOptions options_;

 private:
  std::mutex wakeup_mu_;
  std::function<void()> wakeup_;
};

// Builds the connector of options.role (prefill or decode) over the
// backend's KV cache `memory` (initialised). `transport` replaces the one
// options.transport names (tests: a FaultTransport); null: that one.
Result<std::shared_ptr<PdKvConnector>> create_pd_connector(const KvMemory& memory, PdConnectorOptions options,
                                                           std::unique_ptr<Transport> transport = nullptr);

}  // namespace baton
