// KvAgent: the serving side that a prefill instance runs (on --kv-port). It
// answers descriptor requests, streams blocks to tcp readers, and reports
// "peer X finished reading request R" through the done callback, so that the
// owner (later: the engine's lease table) frees the blocks.
//
// One thread accepts; each connection gets its own thread (a handful of
// decode peers, each with a few connections).
#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <utility>  // before asio: Boost 1.74 awaitable.hpp needs std::exchange
#include <boost/asio.hpp>

#include "common/status.h"
#include "kv_transfer/connection.h"
#include "kv_transfer/kv_region.h"
#include "kv_transfer/peer_descriptor.h"
#include "kv_transfer/staging_pool.h"

namespace baton {

// Called on an agent thread when a peer says it is done reading a request.
using DoneCallback =
    std::function<void(const std::string& peer_engine_id, const std::string& request_id)>;

struct KvAgentOptions {
  std::string host = "127.0.0.1";  // address to bind and to advertise
  int port = 0;                    // 0: an ephemeral port
  int64_t io_timeout_ms = 60000;   // one request's I/O limit once it started
  size_t staging_bytes = 16u << 20;  // device regions: host staging per chunk
  // Device regions: staging buffer pairs kept for concurrent reads (pinned
  // when the copier can); a read beyond them waits for one (StagingPool).
  int max_staging_pairs = 8;
  // A "done" frame with renew=true (a reader still pulling asks for more
  // lease time) goes here instead of on_done; unset: such frames are acked
  // and otherwise ignored.
  DoneCallback on_renew;
};

struct KvAgentStats {
  uint64_t num_bytes_served = 0;
  uint64_t num_blocks_served = 0;
  uint64_t num_reads = 0;
  uint64_t num_done = 0;
  uint64_t num_errors = 0;
  uint64_t num_connections = 0;  // accepted, ever
};

class KvAgent {
 public:
  // Binds and starts serving; `descriptor` gets the bound host and port.
  static Result<std::unique_ptr<KvAgent>> start(const KvRegionDesc& region,
                                                PeerDescriptor descriptor, DoneCallback on_done,
                                                KvAgentOptions options = {});
  ~KvAgent();
  KvAgent(const KvAgent&) = delete;
  KvAgent& operator=(const KvAgent&) = delete;

  // Stops accepting, closes every connection, joins threads. Idempotent.
  void stop();

  int port() const { return descriptor_.port; }
  const PeerDescriptor& descriptor() const { return descriptor_; }
  KvAgentStats stats() const;

 private:
  KvAgent(const KvRegionDesc& region, PeerDescriptor descriptor, DoneCallback on_done,
          KvAgentOptions options);
  void accept_next();
  void serve_connection(Connection* conn);
  Status handle_read(Connection& conn, const Json& request);
  void reap_finished();

  struct ConnSlot {
    std::unique_ptr<Connection> conn;
    std::thread thread;
    std::atomic<bool> finished{false};
  };

  KvRegionDesc region_;
  PeerDescriptor descriptor_;
  DoneCallback on_done_;
  KvAgentOptions options_;
  boost::asio::io_context accept_io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread accept_thread_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;  // guards conns_ and stats_
  std::list<ConnSlot> conns_;
  KvAgentStats stats_;
  std::unique_ptr<StagingPool> staging_;  // device regions only; outlives the connection threads
};

}  // namespace baton
