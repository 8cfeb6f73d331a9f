// TransferKvConnector: the engine's KvConnector (engine/kv_connector.h) over
// kv_transfer's TransferEngine and KvAgent; the protocol is in docs/pd.md.
//
// Prefill role: runs the KV agent on --kv-port; a finished do_remote_decode
// request's blocks are held under a lease until the decode side says "done"
// (freed at once), "renew" (extended), the router releases it (it gave up on
// the request: release_lease) or the lease expires (freed, counted). Each
// lease has an unguessable token (RAND_bytes) in its kv_transfer_params; the
// agent serves only that lease's blocks to a reader presenting it, and only
// its holder may renew it, say "done" or release it. With a KV secret the
// params are signed too, and peers authenticate at connect
// (docs/security.md ("The KV port")).
// With the shm transport and host KV, the region peers map is a shared-memory
// mirror of the backend's KV: a finished prompt's blocks are copied into it at
// the same block ids when the lease starts (one memcpy per run of blocks).
//
// Decode role: kv_transfer_params are checked when the request arrives
// (check_transfer_params: types; with a secret the signature, without one a
// loopback host), then a pull runs on a loader thread: connect to the prefill's agent
// (once per peer; an incompatible peer is refused there, naming the field),
// read the blocks the local prefix cache lacks as ONE batched read, renew the
// lease while it runs, say "done" to the prefill side, queue the result.
//
// Threads: the engine thread calls the KvConnector methods; the agent's and
// the loaders' threads only queue events (under mu_) and call the wakeup.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kv/kv_layout.h"
#include "common/metrics_registry.h"
#include "common/status.h"
#include "engine/kv_connector.h"
#include "kv_transfer/kv_secret.h"
#include "kv_transfer/shm_buffer.h"
#include "kv_transfer/transfer_engine.h"

namespace baton {

enum class PdRole { kAgg, kPrefill, kDecode };
Result<PdRole> parse_pd_role(const std::string& name);  // agg|prefill|decode
const char* pd_role_name(PdRole role);
Result<KvLoadFailurePolicy> parse_kv_load_failure_policy(const std::string& name);  // fail|recompute

struct TransferKvConnectorOptions {
  PdRole role = PdRole::kPrefill;
  std::string engine_id;            // unique per instance
  std::string model;                // model identity, checked against peers
  std::string transport = "shm";    // local|shm|tcp|cuda_ipc
  std::string host = "127.0.0.1";   // the KV agent's bind and advertised address
  int kv_port = 0;                  // 0: ephemeral
  int64_t lease_ms = 30000;
  KvLoadFailurePolicy failure_policy = KvLoadFailurePolicy::kFail;
  bool checksum = false;            // xxHash64 every pulled block
  std::string fault;                // tests only: fail|corrupt|drop|delay_ms=N ("" = none)
  int num_loaders = 2;              // concurrent pulls
  int64_t load_timeout_ms = 0;      // a pull's limit; 0 = the lease length, at least 10 s
  MetricLabels metric_labels;
  // The KV secret (KvSecret::load): peers authenticate, params are signed.
  // Null: none, and then the agent must bind a loopback host.
  std::shared_ptr<const KvSecret> secret;
  // The KV agent's limits (KvAgentOptions).
  int agent_max_connections = 256;
  int agent_workers = 8;
  int64_t agent_idle_timeout_ms = 60000;
  int64_t agent_frame_timeout_ms = 10000;
};

class TransferKvConnector : public KvConnector {
 public:
  // `memory` is the backend's KV cache (initialised).
  static Result<std::shared_ptr<TransferKvConnector>> create(const KvMemory& memory,
                                                             TransferKvConnectorOptions options);
  // Adds the baton:kv_* series to `registry` (which must outlive this) and
  // keeps them current. Call once, before requests arrive.
  void attach_metrics(MetricsRegistry& registry);
  ~TransferKvConnector() override;

  // Stops the loaders (cancelling pulls) and the agent. Idempotent. Call it
  // after the engine thread has stopped.
  void stop();

  int kv_port() const;  // the agent's port (prefill), else 0
  const std::string& engine_id() const { return options_.engine_id; }

  // KvConnector.
  void set_wakeup(std::function<void()> wakeup) override;
  bool has_events() const override;
  bool has_timers() const override;
  Json on_prefill_finished(const std::string& request_id, int num_prompt_tokens,
                           std::vector<int> block_ids) override;
  Status check_transfer_params(const Json& params) const override;
  Status start_load(const KvLoadRequest& load) override;
  void cancel_load(const std::string& request_id, std::vector<int> block_ids) override;
  KvLoadFailurePolicy load_failure_policy() const override { return options_.failure_policy; }
  KvConnectorEvents poll() override;

  // Prefill side, any thread: the router gave up on a request whose prefill
  // returned `params` (no decode came, or its client left): frees the lease
  // at once. The params' lease token must match (and, with a secret, their
  // signature); NOT_FOUND when the lease already ended.
  Status release_lease(const Json& params);

  struct Stats {
    int64_t num_leases = 0;              // live
    int64_t num_blocks_pinned = 0;       // under live leases
    int64_t num_lease_expirations = 0;
    int64_t num_leases_done = 0;         // ended by the decode side's "done"
    int64_t num_lease_renewals = 0;
    int64_t num_loads_ok = 0;
    int64_t num_loads_failed = 0;
    int64_t num_blocks_received = 0;
    int64_t num_blocks_local_hit = 0;    // not pulled: the local prefix cache had them
    int64_t num_leases_released = 0;     // ended by release_lease (the router gave up)
    int64_t num_grants_denied = 0;       // reads/done/renew/release refused: unknown lease, wrong token or blocks
  };
  Stats stats() const;

 private:
  struct Lease {
    std::vector<int> block_ids;
    TimePoint expires;
    std::string token;  // hex from RAND_bytes; a reader presents it
  };
  struct Load {
    std::string request_id;
    std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
    std::shared_ptr<TransferHandle> handle;  // set once the read is submitted
    std::vector<int> release_after;          // blocks to give back when it stops (cancelled)
    bool abandoned = false;
  };
  struct Metrics;

  TransferKvConnector(TransferKvConnectorOptions options, size_t block_bytes, int block_size);
  Status init(const KvMemory& memory);
  void on_agent_done(const std::string& peer_engine_id, const std::string& request_id, bool renew);
  // The agent's GrantCheck: the lease exists, the token matches, the runs
  // (when a read) lie inside its blocks.
  Status check_grant(const KvGrant& grant, const std::vector<BlockRun>* runs);
  // Ends a lease (mu_ held); its blocks go back through poll().
  void end_lease_locked(std::unordered_map<std::string, Lease>::iterator it);
  void loader_loop();
  void run_load(const KvLoadRequest& load, std::shared_ptr<Load> state);
  Status pull(const KvLoadRequest& load, Load& state, int64_t* num_blocks_pulled);
  void finish_load(const std::string& request_id, Status status);
  void wake();
  void update_gauges_locked();

  TransferKvConnectorOptions options_;
  size_t block_bytes_;
  int block_size_;
  std::unique_ptr<DeviceCopier> copier_;  // device KV staged through the host (tcp); outlives transfer_
  std::unique_ptr<TransferEngine> transfer_;
  std::unique_ptr<SharedMemoryBuffer> mirror_;  // shm prefill: what peers map
  const uint8_t* backend_base_ = nullptr;       // mirror source
  PeerDescriptor local_desc_;
  std::unique_ptr<Metrics> metrics_;

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable loader_cv_;
  std::function<void()> wakeup_;
  std::unordered_map<std::string, Lease> leases_;
  std::vector<std::vector<int>> to_release_;
  std::vector<KvLoadResult> loads_done_;
  std::deque<std::pair<KvLoadRequest, std::shared_ptr<Load>>> load_queue_;
  std::unordered_map<std::string, std::shared_ptr<Load>> loads_;  // queued or running
  bool stopping_ = false;
  Stats stats_;
  std::vector<std::thread> loaders_;
};

}  // namespace baton
