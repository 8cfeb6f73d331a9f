#include "kv_transfer/tcp_transport.h"

#include "kv_transfer/agent_client.h"
#include "kv_transfer/multi_stream_read.h"

namespace baton {

namespace {

class TcpLink : public PeerLink {
 public:
  TcpLink(const KvRegionDesc& local, std::shared_ptr<StagingPool> staging, MultiStreamOptions streams,
          const std::string& host, int port, std::shared_ptr<const KvSecret> secret)
      : local_(local), staging_(std::move(staging)), streams_(streams), client_(host, port, std::move(secret)) {}

  Result<std::vector<uint64_t>> read(const std::vector<BlockRun>& runs, bool want_checksums,
                                     const ReadContext& ctx) override {
    return read_blocks_multi_stream(client_, runs, local_, want_checksums, ctx, staging_.get(), streams_);
  }

 private:
  KvRegionDesc local_;
  std::shared_ptr<StagingPool> staging_;  // device regions only
  MultiStreamOptions streams_;
  AgentClient client_;
};

constexpr int kMaxStreams = 64;

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
  if (options_.num_streams < 1 || options_.num_streams > kMaxStreams) {
    return invalid_argument("tcp transport: num_streams must be in [1, {}], got {}", kMaxStreams, options_.num_streams);
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
  return std::unique_ptr<PeerLink>(
      std::make_unique<TcpLink>(local_, staging_, MultiStreamOptions{options_.num_streams, options_.min_stream_bytes},
                                remote.host, remote.port, secret_));
}

}  // namespace baton
