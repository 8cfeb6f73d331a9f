// TcpTransport: host-staged, any two hosts. The serving side's KV agent
// streams the requested blocks over one TCP connection (a gathered write
// straight from its region); this side reads them straight into its blocks
// (device regions go through KvRegionDesc::copier). No per-block round trip.
#pragma once

#include "kv_transfer/transport.h"

namespace baton {

class TcpTransport : public Transport {
 public:
  std::string name() const override { return "tcp"; }
  TransportCaps caps() const override {
    return {.host_memory = true, .device_memory = true, .cross_host = true};
  }
  Status register_local(const KvRegionDesc& region, PeerDescriptor& desc) override;
  Result<std::unique_ptr<PeerLink>> connect(const PeerDescriptor& remote) override;

 private:
  KvRegionDesc local_;
  bool registered_ = false;
};

}  // namespace baton
