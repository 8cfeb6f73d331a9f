// AgentClient: the decode side's handle on one peer's KV agent. It keeps a
// small pool of connections (one per concurrent call) and speaks the wire
// protocol: the handshake (kv_handshake.h) on each new connection, fetch the
// descriptor, read blocks (tcp transport), say done. A pooled connection idle
// for half the agent's idle timeout, or closed by the agent, is not reused.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "kv_transfer/block_runs.h"
#include "kv_transfer/connection.h"
#include "kv_transfer/kv_region.h"
#include "kv_transfer/kv_secret.h"
#include "kv_transfer/peer_descriptor.h"
#include "kv_transfer/staging_pool.h"
#include "kv_transfer/wire.h"

namespace baton {

class AgentClient {
 public:
  AgentClient(std::string host, int port, std::shared_ptr<const KvSecret> secret = nullptr)
      : host_(std::move(host)), port_(port), secret_(std::move(secret)) {}

  Result<PeerDescriptor> fetch_descriptor(const std::string& my_engine_id, const ReadContext& ctx);

  // Tells the peer that this engine finished reading the lease `grant`
  // (presenting its token). With renew, asks for more lease time instead.
  Status notify_done(const std::string& my_engine_id, const KvGrant& grant, const ReadContext& ctx, bool renew = false);

  // Streamed KV: asks how far the lease `grant` (still being computed) has
  // got, waiting up to wait_ms for more than num_blocks_known blocks. The
  // peer's answer (kAck JSON: block_ids, num_blocks_ready, finished).
  Result<Json> query_progress(const KvGrant& grant, int64_t num_blocks_known, int64_t wait_ms, const ReadContext& ctx);

  // Streams the remote side of `runs` into the local side of `runs` in
  // `local` (host, or device through local.copier, staged in chunks of
  // staging->buffer_bytes() through a pair leased from `staging`, which a
  // device region needs). Presents ctx.grant when set. Returns the peer's
  // per-block checksums when asked.
  Result<std::vector<uint64_t>> read_blocks(const std::vector<BlockRun>& runs, const KvRegionDesc& local,
                                            bool want_checksums, const ReadContext& ctx,
                                            StagingPool* staging = nullptr);

  // The same over one pooled connection, staging device KV through the
  // caller's `lease` (device regions; chunks of at most chunk_bytes, which
  // the lease's buffers must hold). The multi-stream read runs one per part.
  Result<std::vector<uint64_t>> read_blocks_leased(const std::vector<BlockRun>& runs, const KvRegionDesc& local,
                                                   bool want_checksums, const ReadContext& ctx,
                                                   const StagingPool::Lease* lease, size_t chunk_bytes);

  std::string address() const { return host_ + ":" + std::to_string(port_); }

 private:
  // Sends one request frame and reads the agent's kAck (its JSON) or error.
  Result<Json> ask_for_ack(MsgType type, const Json& msg, const ReadContext& ctx);
  Result<std::unique_ptr<Connection>> acquire(const ReadContext& ctx);
  void release(std::unique_ptr<Connection> conn);

  struct Idle {
    std::unique_ptr<Connection> conn;
    TimePoint since;
  };

  std::string host_;
  int port_;
  std::shared_ptr<const KvSecret> secret_;
  std::mutex mu_;
  std::vector<Idle> idle_;
  int64_t agent_idle_timeout_ms_ = 0;  // from the agent's hello; 0 = unknown
};

}  // namespace baton
