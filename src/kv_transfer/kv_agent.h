// KvAgent: the serving side that a prefill instance runs (on --kv-port). It
// answers descriptor requests, streams blocks to tcp readers, and reports
// "peer X finished reading request R" through the done callback, so that the
// owner (the connector's lease table) frees the blocks.
//
// The KV port is a trust boundary (docs/security.md ("The KV port")):
//  - every connection opens with the handshake of kv_handshake.h; with a
//    secret, nothing but the proof is read until it checks;
//  - with a grant check (the connector's lease table), a read is served only
//    for blocks of the lease whose token it presents, and only that lease's
//    holder may renew it or say "done";
//  - bounded: at most max_connections at once (at the cap, a connection
//    still in its handshake or partway through a frame makes room for a new
//    one; if there is none, the new one is closed at accept),
//    frame JSON at most max_frame_json_bytes (handshake frames 4 KiB), memory
//    only for bytes that came, a deadline per frame and per idle connection,
//    and a fixed pool of num_workers threads.
//
// Threads: one poller (accepts, reads and assembles request frames without
// blocking, enforces deadlines) and num_workers workers (each answers one
// complete frame at a time, then hands the connection back).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>  // before asio: Boost 1.74 awaitable.hpp needs std::exchange
#include <vector>

#include <boost/asio.hpp>

#include "common/status.h"
#include "kv_transfer/block_runs.h"
#include "kv_transfer/connection.h"
#include "kv_transfer/kv_region.h"
#include "kv_transfer/kv_secret.h"
#include "kv_transfer/peer_descriptor.h"
#include "kv_transfer/staging_pool.h"
#include "kv_transfer/wire.h"

namespace baton {

// Called on an agent thread when a peer says it is done reading a request.
using DoneCallback = std::function<void(const std::string& peer_engine_id, const std::string& request_id)>;
// Streamed KV: a reader asks how far a lease still being computed has got
// (kProgress). Waits up to wait_ms for more than num_blocks_known blocks;
// returns the kAck's JSON, or the error the peer gets.
using ProgressQuery = std::function<Result<Json>(const KvGrant& grant, int64_t num_blocks_known, int64_t wait_ms)>;
// The longest a kProgress may hold a worker.
inline constexpr int64_t kMaxProgressWaitMs = 1000;

struct KvAgentOptions {
  std::string host = "127.0.0.1";    // address to bind and to advertise
  int port = 0;                      // 0: an ephemeral port
  int64_t io_timeout_ms = 60000;     // one request's I/O limit once it started
  size_t staging_bytes = 16u << 20;  // device regions: host staging per chunk
  // Device regions: staging buffer pairs kept for concurrent reads (pinned
  // when the copier can); a read beyond them waits for one (StagingPool).
  int max_staging_pairs = 8;
  // A "done" frame with renew=true (a reader still pulling asks for more
  // lease time) goes here instead of on_done; unset: such frames are acked
  // and otherwise ignored.
  DoneCallback on_renew;
  // Peers prove they hold it at connect. Null: no authentication, and then
  // the agent binds only a loopback address.
  std::shared_ptr<const KvSecret> secret;
  // The lease table's check. Unset (a bare agent: tests, benchmarks): any
  // block of the region may be read and every done is passed on.
  GrantCheck check_grant;
  // Answers kProgress (streamed KV). Unset: such requests get an error.
  ProgressQuery on_progress;
  int max_connections = 256;         // open at once; more are closed at accept
  int num_workers = 8;               // threads answering requests
  int64_t idle_timeout_ms = 60000;   // a connection with no frame for this long is closed
  int64_t frame_timeout_ms = 10000;  // a frame (or the handshake) must arrive whole within this
  uint32_t max_frame_json_bytes = kMaxFrameJsonBytes;
};

struct KvAgentStats {
  uint64_t num_bytes_served = 0;
  uint64_t num_blocks_served = 0;
  uint64_t num_reads = 0;
  uint64_t num_done = 0;
  uint64_t num_errors = 0;               // requests answered with an error, or failed mid-answer
  uint64_t num_connections = 0;          // accepted, ever
  uint64_t num_connections_refused = 0;  // closed at accept: max_connections open
  uint64_t num_connections_evicted = 0;  // closed to make room: still in a handshake or a frame at the cap
  uint64_t num_auth_failures = 0;
  uint64_t num_bad_frames = 0;       // undecodable, oversized, mistyped
  uint64_t num_timeouts = 0;         // idle or frame deadline passed
  uint64_t num_denied = 0;           // refused by the grant check
  int64_t num_open_connections = 0;  // now
};

class KvAgent {
 public:
  // Binds and starts serving; `descriptor` gets the bound host and port.
  static Result<std::unique_ptr<KvAgent>> start(const KvRegionDesc& region, PeerDescriptor descriptor,
                                                DoneCallback on_done, KvAgentOptions options = {});
  ~KvAgent();
  KvAgent(const KvAgent&) = delete;
  KvAgent& operator=(const KvAgent&) = delete;

  // Stops accepting, closes every connection, joins threads. Idempotent.
  void stop();

  int port() const { return descriptor_.port; }
  const PeerDescriptor& descriptor() const { return descriptor_; }
  KvAgentStats stats() const;
  // Threads the agent runs (poller + workers), whatever the connections.
  int num_threads() const { return 1 + options_.num_workers; }

  // Answers one request frame of an authenticated connection (a worker's
  // job; fuzz targets call it over a socketpair). An error means the
  // connection is to be dropped; a bad request gets a kError reply and OK.
  Status handle_frame(Connection& conn, const Frame& frame);

 private:
  struct AgentConn;

  KvAgent(const KvRegionDesc& region, PeerDescriptor descriptor, DoneCallback on_done, KvAgentOptions options);
  void poll_loop();
  void worker_loop();
  void accept_ready();
  // Whether a new connection may be kept: under the cap, at it once the
  // connections whose peers left are closed, or by evicting the non-busy connection still in its handshake or a frame
  // nearest its deadline. Counts the outcome.
  bool make_room(const std::string& peer);
  // Closes the connections (not busy) whose peer has gone.
  void reap_closed();
  enum class ReadOutcome { kKeep, kClose, kDispatched };
  // Reads what the connection has (never past the current frame); a whole
  // request frame goes to the workers (kDispatched: the poller lets go of it).
  ReadOutcome read_ready(AgentConn& c);
  bool on_handshake_frame(AgentConn& c, const Frame& frame);
  void close_conn(uint64_t id);
  void wake_poller();
  Status handle_read(Connection& conn, const Json& request);
  Status handle_done(Connection& conn, const Json& request);
  Status handle_progress(Connection& conn, const Json& request);
  void count_error(uint64_t KvAgentStats::*counter);

  KvRegionDesc region_;
  PeerDescriptor descriptor_;
  DoneCallback on_done_;
  KvAgentOptions options_;
  boost::asio::io_context accept_io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  int wake_fds_[2] = {-1, -1};  // a pipe: workers hand connections back, stop() wakes the poller
  std::thread poll_thread_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable work_cv_;
  std::unordered_map<uint64_t, std::unique_ptr<AgentConn>> conns_;
  std::deque<std::pair<uint64_t, Frame>> work_;  // complete frames for the workers
  std::vector<uint64_t> returned_;               // handed back by workers, to poll again
  uint64_t next_conn_id_ = 1;
  KvAgentStats stats_;
  std::unique_ptr<StagingPool> staging_;  // device regions only; outlives the workers
};

// Whether `host` is a loopback address (127.0.0.0/8, ::1) or "localhost".
bool is_loopback_host(const std::string& host);

}  // namespace baton
