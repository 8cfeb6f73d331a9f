#include "kv_transfer/shm_transport.h"

#include <limits>

#include "kv_transfer/host_copy.h"
#include "kv_transfer/peer_process.h"
#include "kv_transfer/shm_buffer.h"

namespace baton {

namespace {

class ShmLink : public PeerLink {
 public:
  ShmLink(const KvRegionDesc& local, std::unique_ptr<SharedMemoryBuffer> mapping, size_t block_bytes, std::string peer,
          int64_t peer_pid)
      : local_(local),
        mapping_(std::move(mapping)),
        block_bytes_(block_bytes),
        peer_(std::move(peer)),
        peer_pid_(peer_pid) {}

  Result<std::vector<uint64_t>> read(const std::vector<BlockRun>& runs, bool want_checksums,
                                     const ReadContext& ctx) override {
    // The mapping outlives the peer, but its KV is meaningless once the
    // peer's process is gone: check before and after copying.
    BATON_RETURN_IF_ERROR(check_alive("before"));
    BATON_ASSIGN_OR_RETURN(
        auto sums, copy_runs_host(static_cast<uint8_t*>(local_.base), static_cast<const uint8_t*>(mapping_->data()),
                                  block_bytes_, runs, want_checksums, ctx));
    BATON_RETURN_IF_ERROR(check_alive("during"));
    return sums;
  }

 private:
  Status check_alive(const char* when) const {
    if (!peer_process_exited(peer_pid_)) return Status::ok();
    return unavailable("shm transport: peer '{}' (pid {}) exited {} the transfer", peer_, peer_pid_, when);
  }

  KvRegionDesc local_;
  std::unique_ptr<SharedMemoryBuffer> mapping_;
  size_t block_bytes_;
  std::string peer_;
  int64_t peer_pid_;  // <= 0: not checkable from here
};

}  // namespace

Status ShmTransport::register_local(const KvRegionDesc& region, PeerDescriptor& desc) {
  BATON_RETURN_IF_ERROR(check_region_caps(*this, region));
  local_ = region;
  registered_ = true;
  // Only a serving region needs to be in shared memory; a region that only
  // reads may be ordinary memory (then peers cannot read from it).
  desc.transport_params["shm_name"] = region.shm_name;
  describe_this_process(desc.transport_params);
  return Status::ok();
}

Result<std::unique_ptr<PeerLink>> ShmTransport::connect(const PeerDescriptor& remote) {
  if (!registered_) return failed_precondition("shm transport: no local KV region registered");
  BATON_ASSIGN_OR_RETURN(const std::string name, transport_param<std::string>(remote, "shm_name", ""));
  BATON_ASSIGN_OR_RETURN(const std::string host, transport_param<std::string>(remote, "hostname", ""));
  if (name.empty()) {
    return failed_precondition(
        "shm transport: peer '{}' has no KV region in shared memory (allocate it with "
        "SharedMemoryBuffer and set KvRegionDesc::shm_name)",
        remote.engine_id);
  }
  if (!host.empty() && host != this_hostname()) {
    return failed_precondition("shm transport: peer '{}' is on host '{}', this is '{}' (use tcp)", remote.engine_id,
                               host, this_hostname());
  }
  // The mapping is as long as the peer's region: open_read_only refuses a
  // segment shorter than that.
  BATON_RETURN_IF_ERROR(check_peer_region_within(remote, 0, std::numeric_limits<uint64_t>::max(), "shm transport"));
  const size_t bytes = static_cast<size_t>(remote.num_blocks) * remote.block_bytes;
  BATON_ASSIGN_OR_RETURN(auto mapping, SharedMemoryBuffer::open_read_only(name, bytes));
  const int64_t pid = checkable_peer_pid(remote.transport_params);
  return std::unique_ptr<PeerLink>(std::make_unique<ShmLink>(
      local_, std::move(mapping), static_cast<size_t>(remote.block_bytes), remote.engine_id, pid));
}

}  // namespace baton
