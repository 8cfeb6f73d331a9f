#include "kv_transfer/connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>

namespace baton {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
// How often a blocked call wakes to check its deadline and cancel flag.
constexpr auto kPollSlice = std::chrono::milliseconds(20);

void tune_socket(tcp::socket& socket) {
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
}
}  // namespace

Connection::Connection(std::unique_ptr<asio::io_context> io, tcp::socket socket, std::string peer_name)
    : io_(std::move(io)), socket_(std::move(socket)), peer_name_(std::move(peer_name)) {
  tune_socket(socket_);
  boost::system::error_code ec;
  socket_.native_non_blocking(true, ec);  // the data path polls itself (transfer_all)
}

Connection::~Connection() {
  boost::system::error_code ec;
  socket_.close(ec);
}

void Connection::shutdown() {
  if (!open_.exchange(false)) return;
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
}

bool Connection::peer_closed() {
  if (!open_.load()) return true;
  pollfd pfd{socket_.native_handle(), POLLIN, 0};
  if (::poll(&pfd, 1, 0) <= 0) return false;
  if ((pfd.revents & (POLLERR | POLLHUP)) != 0) return true;
  char byte = 0;
  const ssize_t n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

Result<std::unique_ptr<Connection>> Connection::connect(const std::string& host, int port, const ReadContext& ctx) {
  const std::string name = host + ":" + std::to_string(port);
  if (port <= 0 || port > 65535) return invalid_argument("KV peer {}: bad port", name);
  auto io = std::make_unique<asio::io_context>();
  tcp::resolver resolver(*io);
  boost::system::error_code ec;
  auto endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) return unavailable("KV peer {}: cannot resolve host: {}", name, ec.message());
  tcp::socket socket(*io);
  bool done = false;
  asio::async_connect(socket, endpoints, [&](const boost::system::error_code& e, const tcp::endpoint&) {
    ec = e;
    done = true;
  });
  while (!done) {
    io->run_one_for(kPollSlice);
    if (done) break;
    if (ctx.expired() || ctx.is_cancelled()) {
      socket.close(ec);
      io->run();
      if (ctx.is_cancelled()) return aborted("KV peer {}: connect cancelled", name);
      return deadline_exceeded("KV peer {}: connect timed out", name);
    }
  }
  if (ec) return unavailable("KV peer {}: cannot connect: {}", name, ec.message());
  return std::make_unique<Connection>(std::move(io), std::move(socket), name);
}

namespace {

enum class IoDir { kRead, kWrite };

// Moves every byte of `iov` with readv/writev on a non-blocking socket,
// waiting in poll() slices so that the deadline and cancel flag are honoured.
// No event loop on the data path: large transfers are one syscall per
// socket-buffer's worth, like a plain blocking stream.
Status transfer_all(int fd, IoDir dir, std::vector<iovec> iov, const ReadContext& ctx, const std::atomic<bool>& open,
                    const std::string& peer, size_t* moved) {
  const char* what = dir == IoDir::kRead ? "read" : "write";
  size_t total = 0;
  for (const auto& v : iov) total += v.iov_len;
  size_t first = 0;
  *moved = 0;
  while (first < iov.size()) {
    if (iov[first].iov_len == 0) {
      ++first;
      continue;
    }
    const int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
    ssize_t n = 0;
    if (dir == IoDir::kRead) {
      n = ::readv(fd, &iov[first], count);
    } else {
      msghdr msg{};
      msg.msg_iov = &iov[first];
      msg.msg_iovlen = static_cast<size_t>(count);
      n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);  // a closed peer is an error, not SIGPIPE
    }
    if (n > 0) {
      *moved += static_cast<size_t>(n);
      size_t left = static_cast<size_t>(n);
      while (left > 0) {
        iovec& v = iov[first];
        const size_t take = std::min(left, v.iov_len);
        v.iov_base = static_cast<uint8_t*>(v.iov_base) + take;
        v.iov_len -= take;
        left -= take;
        if (v.iov_len == 0) ++first;
      }
      continue;
    }
    if (n == 0 && dir == IoDir::kRead) {
      return unavailable("KV peer {}: connection closed by peer after {} of {} bytes", peer, *moved, total);
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      return unavailable("KV peer {}: {} failed after {} of {} bytes: {}", peer, what, *moved, total,
                         std::strerror(errno));
    }
    // Would block: wait for the socket, a slice at a time.
    for (;;) {
      if (ctx.is_cancelled()) return aborted("KV peer {}: {} cancelled", peer, what);
      if (!open.load()) return unavailable("KV peer {}: connection shut down during {}", peer, what);
      const auto now = SteadyClock::now();
      if (now >= ctx.deadline) {
        return deadline_exceeded("KV peer {}: {} timed out after {} of {} bytes", peer, what, *moved, total);
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(ctx.deadline - now);
      const int wait_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 1, kPollSlice.count()));
      pollfd pfd{fd, static_cast<short>(dir == IoDir::kRead ? POLLIN : POLLOUT), 0};
      const int r = ::poll(&pfd, 1, wait_ms);
      if (r > 0) break;  // ready (or error/hup: the next syscall reports it)
      if (r < 0 && errno != EINTR) {
        return unavailable("KV peer {}: poll failed: {}", peer, std::strerror(errno));
      }
    }
  }
  return Status::ok();
}

}  // namespace

Status Connection::write_all(const std::vector<asio::const_buffer>& buffers, const ReadContext& ctx) {
  if (!open_.load()) return unavailable("KV peer {}: connection is closed", peer_name_);
  std::vector<iovec> iov;
  iov.reserve(buffers.size());
  for (const auto& b : buffers) iov.push_back({const_cast<void*>(b.data()), b.size()});
  size_t moved = 0;
  Status st = transfer_all(socket_.native_handle(), IoDir::kWrite, std::move(iov), ctx, open_, peer_name_, &moved);
  if (!st.is_ok()) shutdown();
  return st;
}

Status Connection::read_all(const std::vector<asio::mutable_buffer>& buffers, const ReadContext& ctx) {
  if (!open_.load()) return unavailable("KV peer {}: connection is closed", peer_name_);
  std::vector<iovec> iov;
  iov.reserve(buffers.size());
  for (const auto& b : buffers) iov.push_back({b.data(), b.size()});
  size_t moved = 0;
  Status st = transfer_all(socket_.native_handle(), IoDir::kRead, std::move(iov), ctx, open_, peer_name_, &moved);
  if (!st.is_ok()) shutdown();
  return st;
}

}  // namespace baton
