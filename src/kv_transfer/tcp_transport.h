// TcpTransport: host-staged, any two hosts. The serving side's KV agent
// streams the requested blocks over a TCP connection (a gathered write
// straight from its region); a read larger than min_stream_bytes is split
// into up to num_streams parts of whole blocks, each over its own connection,
// all at once (multi_stream_read.h: one stream rarely fills a fast NIC, nor
// loopback). This side reads them straight into its blocks
// (device regions go through KvRegionDesc::copier, staged through host
// buffers from one StagingPool that every link of this transport shares, so
// they live across transfers and are pinned when the copier can pin). No
// per-block round trip.
#pragma once

#include <memory>

#include "kv_transfer/staging_pool.h"
#include "kv_transfer/transport.h"

namespace baton {

struct TcpTransportOptions {
  size_t staging_bytes = 16u << 20;    // device regions: host staging per chunk
  int max_staging_pairs = 8;           // concurrent device reads staged at once; more wait
  int num_streams = 4;                 // parallel TCP connections a large read is split over
  size_t min_stream_bytes = 8u << 20;  // reads of at most this many bytes use one stream
};

class TcpTransport : public Transport {
 public:
  explicit TcpTransport(TcpTransportOptions options = {}) : options_(options) {}
  std::string name() const override { return "tcp"; }
  TransportCaps caps() const override { return {.host_memory = true, .device_memory = true, .cross_host = true}; }
  Status register_local(const KvRegionDesc& region, PeerDescriptor& desc) override;
  Result<std::unique_ptr<PeerLink>> connect(const PeerDescriptor& remote) override;
  void set_kv_secret(std::shared_ptr<const KvSecret> secret) override { secret_ = std::move(secret); }

  // Null until a device region registers. Shared with the links, which may
  // outlive this transport in a caller's hands.
  std::shared_ptr<StagingPool> staging() const { return staging_; }

 private:
  TcpTransportOptions options_;
  KvRegionDesc local_;
  bool registered_ = false;
  std::shared_ptr<StagingPool> staging_;
  std::shared_ptr<const KvSecret> secret_;  // null: peers' agents serve without authentication
};

}  // namespace baton
