// UcxTransport: KV over libucx (UCX), any two hosts. UCX picks the fastest
// path it has between the two workers: RDMA (rc/dc verbs, RoCE), shared
// memory on one host, tcp otherwise; UCX_TLS (or `tls` here) narrows the
// choice. The serving side runs a UcxServer (ucx_server.h) once its agent
// starts; its worker address and access token travel in the descriptor that
// the KV agent hands out after the authenticated handshake. Readers open a
// UcxLink (ucx_link.h) per peer. Device KV moves through UCX's CUDA
// transports when the UCX build has them, else staged through host memory
// with the region's copier. docs/security.md ("The ucx transport") says how
// the hardening guarantees of the KV port hold here.
#pragma once

#include <memory>
#include <string>

#include "kv_transfer/transport.h"
#include "kv_transfer/ucx_link.h"
#include "kv_transfer/ucx_server.h"

namespace baton {

struct UcxTransportOptions {
  std::string tls;                        // UCX_TLS for this transport's workers; empty: UCX's choice
  size_t max_request_bytes = 64u << 20;   // blocks one read request asks for
  size_t max_staging_bytes = 256u << 20;  // serving device KV staged through the host, in flight
};

class UcxTransport : public Transport {
 public:
  explicit UcxTransport(UcxTransportOptions options = {}) : options_(std::move(options)) {}
  std::string name() const override { return "ucx"; }
  TransportCaps caps() const override { return {.host_memory = true, .device_memory = true, .cross_host = true}; }
  Status register_local(const KvRegionDesc& region, PeerDescriptor& desc) override;
  Status start_serving(PeerDescriptor& desc, GrantCheck check_grant) override;
  Result<std::unique_ptr<PeerLink>> connect(const PeerDescriptor& remote) override;

  // Null until start_serving.
  const UcxServer* server() const { return server_.get(); }

 private:
  UcxTransportOptions options_;
  KvRegionDesc local_;
  bool registered_ = false;
  std::unique_ptr<UcxServer> server_;
};

}  // namespace baton
