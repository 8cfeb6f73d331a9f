// The PD settings of an instance and the one function that turns them into
// the KV connector a prefill or decode engine core gets before its engine
// thread starts (pd/pd_kv_connector.h; docs/pd.md describes the
// protocol). Kept self-contained: it is the only place that constructs the
// connector.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "kv/kv_layout.h"
#include "pd/pd_kv_connector.h"

namespace baton::instance {

struct PdOptions {
  std::string role = "agg";          // agg | prefill | decode
  std::string kv_transport = "shm";  // local | shm | tcp | ucx | cuda_ipc
  std::string kv_require;            // rdma | sm | tcp: refuse to start unless KV moves over it; "" = any
  int kv_port = 0;                   // the prefill's KV agent; 0 = ephemeral
  std::string kv_host;               // the KV agent's address; "" = the server host with a secret, else 127.0.0.1
  std::string kv_secret_file;        // the KV secret (else $BATON_KV_SECRET; never a flag value)
  int kv_max_connections = 256;      // the KV agent's limits (KvAgentOptions)
  int kv_agent_workers = 8;
  int64_t kv_idle_timeout_ms = 60000;
  int64_t kv_frame_timeout_ms = 10000;
  int64_t kv_lease_ms = 30000;
  std::string kv_load_failure_policy = "fail";
  bool kv_checksum = false;
  std::string kv_fault;        // tests only: fail|corrupt|drop|delay_ms=N
  std::string discovery;       // etcd://HOST:PORT: register there (role, URL, model)
  std::string advertise_url;   // the URL routers use; default: the server's own
  double leave_grace_s = 1.0;  // on SIGTERM: serve this long after deregistering
  // Roles that follow the load (instance/role_switcher.h): the role can be
  // changed at run time through POST /v1/admin/role.
  bool role_switching = false;
  double role_drain_timeout_s = 60.0;  // a switch's drain limit unless the request gives one
};

// The connector's options for a prefill or decode instance, checked before
// the model loads (a bad secret or KV address fails fast). `host` is the
// server's host: the KV agent binds it when a KV secret is given and kv_host
// is not; without a secret the agent binds 127.0.0.1 and a non-loopback
// kv_host is refused.
Result<PdConnectorOptions> kv_connector_options(PdRole role, const PdOptions& pd, const std::string& host);

// The connector over the engine's KV memory. `model_dir` gives the model's
// identity for peers; `model_name` labels the connector's metrics (default:
// the model folder).
Result<std::shared_ptr<PdKvConnector>> make_kv_connector(PdConnectorOptions options, const KvMemory& memory,
                                                         const std::string& model_dir, const std::string& model_name);

}  // namespace baton::instance
