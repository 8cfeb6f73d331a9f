#include "kv_transfer/local_transport.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "kv_transfer/host_copy.h"

namespace baton {

namespace {

class LocalLink : public PeerLink {
 public:
  LocalLink(const KvRegionDesc& local, const uint8_t* remote_base, size_t block_bytes)
      : local_(local), remote_base_(remote_base), block_bytes_(block_bytes) {}

  Result<std::vector<uint64_t>> read(const std::vector<BlockRun>& runs, bool want_checksums,
                                     const ReadContext& ctx) override {
    return copy_runs_host(static_cast<uint8_t*>(local_.base), remote_base_, block_bytes_, runs, want_checksums, ctx);
  }

 private:
  KvRegionDesc local_;
  const uint8_t* remote_base_;
  size_t block_bytes_;
};

// The regions this process's LocalTransports serve, base -> (bytes, how
// many transports registered it). A
// descriptor's base and block count come from the peer: a link reads only a
// region registered here, and only within it (an address a peer made up
// would otherwise be read as KV). One table for the process, as "local"
// means one process.
std::mutex& served_mu() {
  static std::mutex mu;
  return mu;
}
struct ServedRegion {
  size_t bytes = 0;
  int registrations = 0;
};
std::map<uintptr_t, ServedRegion>& served_regions() {
  static std::map<uintptr_t, ServedRegion> regions;
  return regions;
}

void unserve(uintptr_t base) {
  auto it = served_regions().find(base);
  if (it != served_regions().end() && --it->second.registrations == 0) served_regions().erase(it);
}

}  // namespace

LocalTransport::~LocalTransport() {
  if (!registered_) return;
  std::lock_guard<std::mutex> lock(served_mu());
  unserve(reinterpret_cast<uintptr_t>(local_.base));
}

Status LocalTransport::register_local(const KvRegionDesc& region, PeerDescriptor& desc) {
  BATON_RETURN_IF_ERROR(check_region_caps(*this, region));
  {
    std::lock_guard<std::mutex> lock(served_mu());
    if (registered_) unserve(reinterpret_cast<uintptr_t>(local_.base));
    ServedRegion& served = served_regions()[reinterpret_cast<uintptr_t>(region.base)];
    served.bytes = std::max(served.bytes, region.total_bytes());
    ++served.registrations;
  }
  local_ = region;
  registered_ = true;
  desc.transport_params["pid"] = static_cast<int64_t>(::getpid());
  desc.transport_params["base"] = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(region.base));
  return Status::ok();
}

Result<std::unique_ptr<PeerLink>> LocalTransport::connect(const PeerDescriptor& remote) {
  if (!registered_) return failed_precondition("local transport: no local KV region registered");
  BATON_ASSIGN_OR_RETURN(const int64_t pid, transport_param<int64_t>(remote, "pid", -1));
  BATON_ASSIGN_OR_RETURN(const uint64_t base, transport_param<uint64_t>(remote, "base", 0));
  if (pid != static_cast<int64_t>(::getpid())) {
    return failed_precondition(
        "local transport: peer '{}' runs in process {}, this is process {} (use shm or tcp "
        "between processes)",
        remote.engine_id, pid, ::getpid());
  }
  if (base == 0) return invalid_argument("local transport: peer '{}' sent no region address", remote.engine_id);
  {
    std::lock_guard<std::mutex> lock(served_mu());
    const auto it = served_regions().find(static_cast<uintptr_t>(base));
    if (it == served_regions().end())
      return invalid_argument("local transport: peer '{}' names no KV region this process serves", remote.engine_id);
    BATON_RETURN_IF_ERROR(check_peer_region_within(remote, 0, it->second.bytes, "local transport"));
  }
  return std::unique_ptr<PeerLink>(std::make_unique<LocalLink>(
      local_, reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(base)), static_cast<size_t>(remote.block_bytes)));
}

}  // namespace baton
