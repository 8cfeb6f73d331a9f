// What a PD KV connector (pd/pd_kv_connector.h) is built from: the role, the
// transport, the KV agent's address and limits, the lease length, the decode
// side's failure policy, and the clocks (tests give fake ones).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/metrics_registry.h"
#include "engine/kv_connector.h"
#include "kv_transfer/kv_secret.h"
#include "pd/pd_role.h"

namespace baton {

// The connectors' time. Leases end on the steady clock; the lease's expiry
// in kv_transfer_params (lease_expires_ms) is wall time, as it leaves the host.
struct PdClock {
  std::function<TimePoint()> steady_now = [] { return SteadyClock::now(); };
  std::function<int64_t()> wall_now_ms = [] { return wall_ms(); };
};

struct PdConnectorOptions {
  PdRole role = PdRole::kPrefill;
  std::string engine_id;           // unique per instance
  std::string model;               // model identity, checked against peers
  std::string transport = "shm";   // local|shm|tcp|cuda_ipc
  std::string host = "127.0.0.1";  // the KV agent's bind and advertised address
  int kv_port = 0;                 // 0: ephemeral
  int64_t lease_ms = 30000;
  KvLoadFailurePolicy failure_policy = KvLoadFailurePolicy::kFail;
  bool checksum = false;        // xxHash64 every pulled block
  std::string fault;            // tests only: fail|corrupt|drop|delay_ms=N ("" = none)
  int num_loaders = 2;          // concurrent pulls
  int64_t load_timeout_ms = 0;  // a pull's limit; 0 = the lease length, at least 10 s
  MetricLabels metric_labels;
  // The KV secret (KvSecret::load): peers authenticate, params are signed.
  // Null: none, and then the agent must bind a loopback host.
  std::shared_ptr<const KvSecret> secret;
  // The KV agent's limits (KvAgentOptions).
  int agent_max_connections = 256;
  int agent_workers = 8;
  int64_t agent_idle_timeout_ms = 60000;
  int64_t agent_frame_timeout_ms = 10000;
  PdClock clock;
};

}  // namespace baton
