// CudaIpcTransport: GPUs of one host. The serving side exports its KV
// allocation with cudaIpcGetMemHandle; the reading side opens it once per
// peer (peer access over NVLink or PCIe where the GPUs allow it) and moves a
// request's blocks with batched cudaMemcpyAsync or one gather kernel
// (cuda_block_copy.h) on the link's stream.
#pragma once

#include "kv_transfer/transport.h"

namespace baton {

class CudaIpcTransport : public Transport {
 public:
  std::string name() const override { return "cuda_ipc"; }
  TransportCaps caps() const override { return {.device_memory = true}; }
  Status register_local(const KvRegionDesc& region, PeerDescriptor& desc) override;
  Result<std::unique_ptr<PeerLink>> connect(const PeerDescriptor& remote) override;

 private:
  KvRegionDesc local_;
  bool registered_ = false;
};

// Adds what the CUDA build brings to kv_transfer's registry (transport_registry.h):
// the "cuda_ipc" transport and the device copier that tcp stages GPU-resident
// KV with. Called once, at start, by the program that links this library
// (cli/main.cpp).
void register_cuda_kv_transfer();

}  // namespace baton
