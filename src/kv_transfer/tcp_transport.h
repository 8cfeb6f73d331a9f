// TcpTransport: host-staged, any two hosts. The serving side's KV agent
// streams the requested blocks over one TCP connection (a gathered write
// straight from its region); this side reads them straight into its blocks
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
  size_t staging_bytes = 16u << 20;  // device regions: host staging per chunk
  int max_staging_pairs = 8;         // concurrent device reads staged at once; more wait
};

class TcpTransport : public Transport {
 public:
  explicit TcpTransport(TcpTransportOptions options = {}) : options_(options) {}
  std::string name() const override { return "tcp"; }
  TransportCaps caps() const override {
    return {.host_memory = true, .device_memory = true, .cross_host = true};
  }
  Status register_local(const KvRegionDesc& region, PeerDescriptor& desc) override;
  Result<std::unique_ptr<PeerLink>> connect(const PeerDescriptor& remote) override;

  // Null until a device region registers. Shared with the links, which may
  // outlive this transport in a caller's hands.
  std::shared_ptr<StagingPool> staging() const { return staging_; }

 private:
  TcpTransportOptions options_;
  KvRegionDesc local_;
  bool registered_ = false;
  std::shared_ptr<StagingPool> staging_;
};

}  // namespace baton
