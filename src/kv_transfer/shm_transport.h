// ShmTransport: processes on one host, KV in host memory. The serving side's
// region lives in POSIX shared memory (SharedMemoryBuffer); the reading side
// maps it read-only once per peer and memcpys the coalesced runs. Descriptor
// exchange and done notifications go over the KV agent's TCP channel.
#pragma once

#include "kv_transfer/transport.h"

namespace baton {

class ShmTransport : public Transport {
 public:
  std::string name() const override { return "shm"; }
  TransportCaps caps() const override { return {.host_memory = true}; }
  Status register_local(const KvRegionDesc& region, PeerDescriptor& desc) override;
  Result<std::unique_ptr<PeerLink>> connect(const PeerDescriptor& remote) override;

 private:
  KvRegionDesc local_;
  bool registered_ = false;
};

}  // namespace baton
