// AgentClient: the decode side's handle on one peer's KV agent. It keeps a
// small pool of connections (one per concurrent call) and speaks the wire
// protocol: fetch the descriptor, read blocks (tcp transport), say done.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "kv_transfer/block_runs.h"
#include "kv_transfer/connection.h"
#include "kv_transfer/kv_region.h"
#include "kv_transfer/peer_descriptor.h"
#include "kv_transfer/staging_pool.h"

namespace baton {

class AgentClient {
 public:
  AgentClient(std::string host, int port) : host_(std::move(host)), port_(port) {}

  Result<PeerDescriptor> fetch_descriptor(const std::string& my_engine_id, const ReadContext& ctx);

  // Tells the peer that this engine finished reading `request_id`.
  // With renew, asks for more lease time instead (the read goes on).
  Status notify_done(const std::string& my_engine_id, const std::string& request_id,
                     const ReadContext& ctx, bool renew = false);

  // Streams the remote side of `runs` into the local side of `runs` in
  // `local` (host, or device through local.copier, staged in chunks of
  // staging->buffer_bytes() through a pair leased from `staging`, which a
  // device region needs). Returns the peer's per-block checksums when asked.
  Result<std::vector<uint64_t>> read_blocks(const std::vector<BlockRun>& runs,
                                            const KvRegionDesc& local, bool want_checksums,
                                            const ReadContext& ctx, StagingPool* staging = nullptr);

  // The same over one pooled connection, staging device KV through the
  // caller's `lease` (device regions; chunks of at most chunk_bytes, which
  // the lease's buffers must hold). The multi-stream read runs one per part.
  Result<std::vector<uint64_t>> read_blocks_leased(const std::vector<BlockRun>& runs,
                                                   const KvRegionDesc& local, bool want_checksums,
                                                   const ReadContext& ctx, const StagingPool::Lease* lease,
                                                   size_t chunk_bytes);

  std::string address() const { return host_ + ":" + std::to_string(port_); }

 private:
  Result<std::unique_ptr<Connection>> acquire(const ReadContext& ctx);
  void release(std::unique_ptr<Connection> conn);

  std::string host_;
  int port_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

}  // namespace baton
