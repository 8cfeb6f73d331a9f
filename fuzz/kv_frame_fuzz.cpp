// KV frame reader (src/kv_transfer/wire): the input is the byte stream a KV
// agent sends to a reader. It arrives over a socket pair and is read frame by
// frame as AgentClient reads replies: error frames become a Status, descriptor
// frames a PeerDescriptor, which then goes where a reader takes it: against
// this side's layout (check_compatible), its transport parameters read as the
// transports read them, its region against what could be served
// (check_peer_region_within). Every bad frame must be an error, never a crash.
// fuzz-link: baton_kv_transfer
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "fuzz_util.h"
#include "kv_transfer/peer_descriptor.h"
#include "kv_transfer/wire.h"

namespace {

// A Connection over one end of a socket pair whose other end holds `bytes`,
// then EOF. Null if the pair cannot be made.
std::unique_ptr<baton::Connection> connection_reading(std::string_view bytes) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return nullptr;
  const int size = static_cast<int>(bytes.size()) + 4096;
  setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fds[1], bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // inputs are far smaller than the socket buffer
    sent += static_cast<size_t>(n);
  }
  ::close(fds[1]);
  auto io = std::make_unique<boost::asio::io_context>();
  boost::asio::ip::tcp::socket socket(*io);
  boost::system::error_code ec;
  socket.assign(boost::asio::ip::tcp::v4(), fds[0], ec);
  if (ec) {
    ::close(fds[0]);
    return nullptr;
  }
  return std::make_unique<baton::Connection>(std::move(io), std::move(socket), "fuzz-peer");
}

// What a reader does with a peer's descriptor before it reads a block.
void use_descriptor(const baton::PeerDescriptor& remote) {
  baton::KvRegionDesc region;
  region.layout.num_blocks = 8;
  region.layout.dtype = baton::DType::kF16;
  region.layout.num_layers = 2;
  region.layout.num_kv_heads = 2;
  region.layout.head_dim = 8;
  region.layout.block_size = 4;
  const auto local = baton::PeerDescriptor::from_region(region, "fuzz-local", remote.model);
  (void)baton::check_compatible(local, remote);
  (void)baton::describe_kv_layout(remote);
  for (const char* key : {"shm_name", "hostname", "ipc_handle", "pci_bus_id"})
    (void)baton::transport_param<std::string>(remote, key, "");
  (void)baton::transport_param<int64_t>(remote, "pid", -1);
  const auto offset = baton::transport_param<uint64_t>(remote, "offset_bytes", 0);
  const auto base = baton::transport_param<uint64_t>(remote, "base", 0);
  (void)baton::check_peer_region_within(remote, offset.is_ok() ? *offset : 0, local.block_bytes * 8, "fuzz");
  (void)baton::check_peer_region_within(remote, base.is_ok() ? *base : 0, UINT64_MAX, "fuzz");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  baton::fuzz::quiet_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto conn = connection_reading(baton::fuzz::as_text(data, size));
  if (conn == nullptr) std::abort();
  const baton::ReadContext ctx{baton::deadline_after_ms(2000), nullptr};
  for (;;) {
    auto frame = baton::recv_frame(*conn, ctx);
    if (!frame.is_ok()) break;
    if (frame->type == baton::MsgType::kError) {
      (void)baton::status_from_error_frame(*frame, conn->peer_name());
    } else if (frame->type == baton::MsgType::kDescriptor) {
      auto desc = baton::PeerDescriptor::from_json(frame->json);
      if (desc.is_ok()) use_descriptor(*desc);
    }
    if (frame->payload_bytes > 0) break;  // the reader would stream the payload next
  }
  return 0;
}
