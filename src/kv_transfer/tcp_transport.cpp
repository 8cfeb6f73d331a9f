#include "kv_transfer/tcp_transport.h"

#include "kv_transfer/agent_client.h"

namespace baton {

namespace {

class TcpLink : public PeerLink {
 public:
  TcpLink(const KvRegionDesc& local, std::shared_ptr<StagingPool> staging, const std::string& host, int port)
      : local_(local), staging_(std::move(staging)), client_(host, port) {}

  Result<std::vector<uint64_t>> read(const std::vector<BlockRun>& runs, bool want_checksums,
                                     const ReadContext& ctx) override {
    return client_.read_blocks(runs, local_, want_checksums, ctx, staging_.get());
  }

 private:
  KvRegionDesc local_;
  std::shared_ptr<StagingPool> staging_;  // device regions only
  AgentClient client_;
};

}  // namespace

Status TcpTransport::register_local(const KvRegionDesc& region, PeerDescriptor& desc) {
  BATON_RETURN_IF_ERROR(check_region_caps(*this, region));
  if (region.memory == MemoryKind::kDevice && region.copier == nullptr) {
    return failed_precondition("tcp transport: a device KV region needs a staging copier");
  }
  if (options_.staging_bytes == 0 || options_.max_staging_pairs < 1) {
    return invalid_argument("tcp transport: staging_bytes must be > 0 and max_staging_pairs >= 1 (got {}, {})",
                            options_.staging_bytes, options_.max_staging_pairs);
  }
  if (region.memory == MemoryKind::kDevice) {
    staging_ = std::make_shared<StagingPool>(region.copier, options_.staging_bytes, options_.max_staging_pairs);
  }
  local_ = region;
  registered_ = true;
  return Status::ok();
}

Result<std::unique_ptr<PeerLink>> TcpTransport::connect(const PeerDescriptor& remote) {
  if (!registered_) return failed_precondition("tcp transport: no local KV region registered");
  if (remote.host.empty() || remote.port <= 0) {
    return invalid_argument("tcp transport: peer '{}' has no agent address", remote.engine_id);
  }
  return std::unique_ptr<PeerLink>(std::make_unique<TcpLink>(local_, staging_, remote.host, remote.port));
}

}  // namespace baton
