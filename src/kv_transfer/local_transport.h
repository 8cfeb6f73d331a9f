// LocalTransport: both engines in one process (tests, single-process
// setups). The descriptor carries the region's address and the pid; a read
// is a memcpy of each coalesced run, and only from a region a LocalTransport
// of this process registered, within its size.
#pragma once

#include "kv_transfer/transport.h"

namespace baton {

class LocalTransport : public Transport {
 public:
  LocalTransport() = default;
  ~LocalTransport() override;
  std::string name() const override { return "local"; }
  TransportCaps caps() const override { return {.host_memory = true}; }
  Status register_local(const KvRegionDesc& region, PeerDescriptor& desc) override;
  Result<std::unique_ptr<PeerLink>> connect(const PeerDescriptor& remote) override;

 private:
  KvRegionDesc local_;
  bool registered_ = false;
};

}  // namespace baton
