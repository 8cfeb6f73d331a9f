#include "kv_transfer/local_transport.h"

#include <unistd.h>

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

}  // namespace

Status LocalTransport::register_local(const KvRegionDesc& region, PeerDescriptor& desc) {
  BATON_RETURN_IF_ERROR(check_region_caps(*this, region));
  local_ = region;
  registered_ = true;
  desc.transport_params["pid"] = static_cast<int64_t>(::getpid());
  desc.transport_params["base"] = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(region.base));
  return Status::ok();
}

Result<std::unique_ptr<PeerLink>> LocalTransport::connect(const PeerDescriptor& remote) {
  if (!registered_) return failed_precondition("local transport: no local KV region registered");
  const int64_t pid = remote.transport_params.value("pid", int64_t{-1});
  const uint64_t base = remote.transport_params.value("base", uint64_t{0});
  if (pid != static_cast<int64_t>(::getpid())) {
    return failed_precondition(
        "local transport: peer '{}' runs in process {}, this is process {} (use shm or tcp "
        "between processes)",
        remote.engine_id, pid, ::getpid());
  }
  if (base == 0) return invalid_argument("local transport: peer '{}' sent no region address", remote.engine_id);
  return std::unique_ptr<PeerLink>(std::make_unique<LocalLink>(
      local_, reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(base)), static_cast<size_t>(remote.block_bytes)));
}

}  // namespace baton
