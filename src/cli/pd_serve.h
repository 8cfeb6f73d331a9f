// `baton serve --role prefill|decode`: the PD flags and the engine build that
// puts a PD KV connector (pd/pd_kv_connector.h) into the core
// before its engine thread starts. docs/pd.md describes the protocol.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/engine_flags.h"
#include "discovery/registration.h"
#include "pd/pd_kv_connector.h"

namespace baton::cli {

struct PdFlags {
  std::string role = "agg";          // agg | prefill | decode
  std::string kv_transport = "shm";  // local | shm | tcp | cuda_ipc
  int kv_port = 0;                   // the prefill's KV agent; 0 = ephemeral
  std::string kv_host;               // the KV agent's address; "" = --host with a secret, else 127.0.0.1
  std::string kv_secret_file;        // the KV secret (else $BATON_KV_SECRET; never a flag value)
  int kv_max_connections = 256;      // the KV agent's limits (KvAgentOptions)
  int kv_agent_workers = 8;
  int64_t kv_idle_timeout_ms = 60000;
  int64_t kv_frame_timeout_ms = 10000;
  int64_t kv_lease_ms = 30000;
  std::string kv_load_failure_policy = "fail";
  bool kv_checksum = false;
  std::string kv_fault;              // hidden, tests only
  std::string discovery;             // etcd://HOST:PORT: register there (role, URL, model)
  std::string advertise_url;         // the URL routers use; default: the server's own
  double leave_grace_s = 1.0;        // on SIGTERM: serve this long after deregistering
};

// Adds --role, --kv-transport, --kv-port, --kv-host, --kv-secret-file,
// --kv-max-connections, --kv-agent-workers, --kv-idle-timeout-ms,
// --kv-frame-timeout-ms, --kv-lease-ms, --kv-load-failure-policy,
// --kv-checksum, --discovery, --advertise-url, --leave-grace-s (and the
// hidden --kv-fault).
void add_pd_flags(CLI::App& app, PdFlags& flags);

struct PdEngine {
  std::unique_ptr<LoadedEngine> loaded;
  std::shared_ptr<PdKvConnector> connector;  // null for agg
};

// build_engine for agg; for prefill/decode, the core gets a connector first.
// `host` is the server's --host: the KV agent binds it when a KV secret is
// given and --kv-host is not; without a secret the agent binds 127.0.0.1 and
// a non-loopback --kv-host is refused.
Result<PdEngine> build_pd_engine(const EngineFlags& engine, const PdFlags& pd, const std::string& host,
                                 const std::string& model_name);

// With --discovery, registers this instance in etcd under its role (null
// without --discovery). Destroying or deregister()ing it leaves at once.
Result<std::unique_ptr<discovery::Registration>> register_instance(const PdFlags& pd, const std::string& url,
                                                                   const std::string& model_name);

// Catches SIGINT/SIGTERM from construction on (so an early one is not lost);
// wait() blocks until one arrives and returns it. For `serve --discovery`,
// which leaves the registry before the server's own graceful shutdown.
class SignalWaiter {
 public:
  SignalWaiter();
  ~SignalWaiter();
  int wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace baton::cli
