#include "kv_transfer/ucx_transport.h"

#include <fmt/format.h>

#include "kv_transfer/peer_process.h"

namespace baton {

namespace {

// A UCX worker address is binary; the descriptor is JSON.
std::string hex_of(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

Result<std::string> bytes_of_hex(const std::string& hex, const std::string& peer) {
  if (hex.size() % 2 != 0) return invalid_argument("ucx transport: peer '{}' sent an odd-length address", peer);
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    unsigned value = 0;
    for (size_t k = 0; k < 2; ++k) {
      const char c = hex[2 * i + k];
      const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (digit < 0) return invalid_argument("ucx transport: peer '{}' sent an address that is not hex", peer);
      value = value * 16 + static_cast<unsigned>(digit);
    }
    out[i] = static_cast<char>(value);
  }
  return out;
}

}  // namespace

Status UcxTransport::register_local(const KvRegionDesc& region, PeerDescriptor& desc) {
  BATON_RETURN_IF_ERROR(check_region_caps(*this, region));
  if (options_.max_request_bytes == 0 || options_.max_staging_bytes == 0) {
    return invalid_argument("ucx transport: max_request_bytes and max_staging_bytes must be > 0");
  }
  local_ = region;
  registered_ = true;
  return Status::ok();
}

Status UcxTransport::start_serving(PeerDescriptor& desc, GrantCheck check_grant) {
  if (!registered_) return failed_precondition("ucx transport: no local KV region registered");
  if (server_ != nullptr) return failed_precondition("ucx transport: already serving");
  UcxServerOptions so;
  so.worker.tls = options_.tls;
  so.check_grant = std::move(check_grant);
  so.max_staging_bytes = options_.max_staging_bytes;
  BATON_ASSIGN_OR_RETURN(server_, UcxServer::start(local_, std::move(so)));
  desc.transport_params["ucx_address"] = hex_of(server_->address());
  desc.transport_params["ucx_access_token"] = server_->access_token();
  describe_this_process(desc.transport_params);
  return Status::ok();
}

Result<std::unique_ptr<PeerLink>> UcxTransport::connect(const PeerDescriptor& remote) {
  if (!registered_) return failed_precondition("ucx transport: no local KV region registered");
  const Json& params = remote.transport_params;
  auto address = params.find("ucx_address");
  auto token = params.find("ucx_access_token");
  if (address == params.end() || !address->is_string() || token == params.end() || !token->is_string()) {
    return failed_precondition("ucx transport: peer '{}' serves no ucx reads (its descriptor has no ucx address)",
                               remote.engine_id);
  }
  UcxPeer peer;
  peer.engine_id = remote.engine_id;
  BATON_ASSIGN_OR_RETURN(peer.address, bytes_of_hex(address->get<std::string>(), remote.engine_id));
  peer.access_token = token->get<std::string>();
  peer.pid = checkable_peer_pid(params);
  UcxLinkOptions lo;
  lo.worker.tls = options_.tls;
  lo.max_request_bytes = options_.max_request_bytes;
  BATON_ASSIGN_OR_RETURN(auto link, UcxLink::open(local_, std::move(peer), std::move(lo)));
  return std::unique_ptr<PeerLink>(std::move(link));
}

}  // namespace baton
