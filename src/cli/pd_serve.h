// `baton serve --role prefill|decode`: the PD flags and the engine build that
// puts a TransferKvConnector (server/transfer_kv_connector.h) into the core
// before its engine thread starts. docs/pd.md describes the protocol.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/engine_flags.h"
#include "server/transfer_kv_connector.h"

namespace baton::cli {

struct PdFlags {
  std::string role = "agg";          // agg | prefill | decode
  std::string kv_transport = "shm";  // local | shm | tcp | cuda_ipc
  int kv_port = 0;                   // the prefill's KV agent; 0 = ephemeral
  int64_t kv_lease_ms = 30000;
  std::string kv_load_failure_policy = "fail";
  bool kv_checksum = false;
  std::string kv_fault;              // hidden, tests only
};

// Adds --role, --kv-transport, --kv-port, --kv-lease-ms,
// --kv-load-failure-policy, --kv-checksum (and the hidden --kv-fault).
void add_pd_flags(CLI::App& app, PdFlags& flags);

struct PdEngine {
  std::unique_ptr<LoadedEngine> loaded;
  std::shared_ptr<TransferKvConnector> connector;  // null for agg
};

// build_engine for agg; for prefill/decode, the core gets a connector first.
// `host` is where the KV agent binds and what it advertises.
Result<PdEngine> build_pd_engine(const EngineFlags& engine, const PdFlags& pd, const std::string& host,
                                 const std::string& model_name);

}  // namespace baton::cli
