// TransferEngine: one per serving instance. It registers the instance's KV
// region with a transport, optionally runs the KV agent (prefill side),
// connects to peers (fetching and checking their descriptors once), and
// reads lists of remote blocks into local blocks as one batched operation
// on a worker thread, returning a handle to poll or wait on.
//
//   prefill:  engine.register_memory(region); engine.start_agent(on_done);
//   decode:   engine.register_memory(region);
//             auto peer = engine.connect_peer(host, port);
//             auto h = engine.read_blocks(peer->engine_id, remote, local, {...});
//             h->wait(ms); engine.notify_done(peer->engine_id, request_id);
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "kv_transfer/agent_client.h"
#include "kv_transfer/kv_agent.h"
#include "kv_transfer/transfer_handle.h"
#include "kv_transfer/transport.h"

namespace baton {

struct TransferEngineOptions {
  std::string engine_id;  // unique per instance
  std::string model;      // model identity for compatibility; empty = unchecked
  int num_workers = 2;    // concurrent transfers
  int64_t connect_timeout_ms = 5000;
  int64_t default_timeout_ms = 30000;  // a read's limit unless ReadOptions says
  bool checksum = false;               // verify xxHash64 per block unless ReadOptions says
  // The KV secret: peers' agents are authenticated with it, and this
  // engine's agent requires it (agent.secret is set from it). Null: none.
  std::shared_ptr<const KvSecret> secret;
  KvAgentOptions agent;  // where start_agent() listens
};

struct ReadOptions {
  std::string request_id;        // for logs and errors
  KvGrant grant;                 // the peer's lease the read presents (empty: none)
  int64_t timeout_ms = 0;        // <= 0: the engine's default
  std::optional<bool> checksum;  // unset: the engine's default
};

struct TransferEngineStats {
  uint64_t num_bytes_received = 0;
  uint64_t num_blocks_received = 0;
  uint64_t num_transfers_ok = 0;
  uint64_t num_transfers_failed = 0;
  uint64_t num_checksum_failures = 0;
};

class TransferEngine {
 public:
  static Result<std::unique_ptr<TransferEngine>> create(std::unique_ptr<Transport> transport,
                                                        TransferEngineOptions options);
  ~TransferEngine();
  TransferEngine(const TransferEngine&) = delete;
  TransferEngine& operator=(const TransferEngine&) = delete;

  // Registers this instance's KV memory (once).
  Status register_memory(const KvRegionDesc& region);
  // Starts the KV agent (descriptor, tcp block reads, done notifications).
  Status start_agent(DoneCallback on_done);
  int agent_port() const;
  // This engine's descriptor (host/port set once the agent runs).
  PeerDescriptor local_descriptor() const;

  // Fetches the peer's descriptor from its agent, refuses an incompatible
  // one, and opens the transport's link (once per peer; later calls reuse).
  Result<PeerDescriptor> connect_peer(const std::string& host, int port);
  // For a request that names its peer (kv_transfer_params): when `engine_id`
  // is already connected at host:port, its descriptor, with no round trip and
  // no wait behind other connects; otherwise connect_peer(host, port), whose
  // answer may name another engine (the caller checks).
  Result<PeerDescriptor> peer_for(const std::string& engine_id, const std::string& host, int port);
  void disconnect_peer(const std::string& peer_engine_id);

  // Reads remote_block_ids of the peer into local_block_ids (same length) as
  // one batched operation; ids are checked before anything moves.
  Result<std::shared_ptr<TransferHandle>> read_blocks(const std::string& peer_engine_id,
                                                      const std::vector<int64_t>& remote_block_ids,
                                                      const std::vector<int64_t>& local_block_ids,
                                                      const ReadOptions& options = {});

  // Tells the peer this engine is done reading the lease `grant` (it frees
  // its blocks).
  Status notify_done(const std::string& peer_engine_id, const KvGrant& grant);
  Status notify_done(const std::string& peer_engine_id, const std::string& request_id) {
    return notify_done(peer_engine_id, KvGrant{request_id, ""});
  }
  // Asks the peer to extend the lease `grant` (a read still runs); the
  // peer's agent calls its KvAgentOptions::on_renew.
  Status notify_renew(const std::string& peer_engine_id, const KvGrant& grant);
  // Streamed KV: how far the peer's lease `grant` has got (AgentClient::
  // query_progress), waiting up to wait_ms for more than num_blocks_known.
  Result<Json> query_progress(const std::string& peer_engine_id, const KvGrant& grant, int64_t num_blocks_known,
                              int64_t wait_ms);

  const Transport& transport() const { return *transport_; }
  TransferEngineStats stats() const;
  // The serving side's counters (all zero while no agent runs).
  KvAgentStats agent_stats() const { return agent_ ? agent_->stats() : KvAgentStats{}; }

 private:
  struct Peer {
    PeerDescriptor desc;
    std::shared_ptr<PeerLink> link;
    std::shared_ptr<AgentClient> control;
  };

  TransferEngine(std::unique_ptr<Transport> transport, TransferEngineOptions options);
  void worker_loop();
  Result<std::shared_ptr<Peer>> find_peer(const std::string& peer_engine_id) const;
  Status run_read(Peer& peer, const std::vector<BlockRun>& runs, bool checksum, const ReadContext& ctx);

  std::unique_ptr<Transport> transport_;
  TransferEngineOptions options_;
  KvRegionDesc region_;
  bool registered_ = false;
  PeerDescriptor descriptor_;
  std::unique_ptr<KvAgent> agent_;

  std::mutex connect_mu_;  // serialises connect_peer (taken before mu_)
  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Peer>> peers_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::weak_ptr<TransferHandle>> in_flight_;
  bool stopping_ = false;
  uint64_t next_id_ = 1;
  TransferEngineStats stats_;
  std::vector<std::thread> workers_;
};

}  // namespace baton
