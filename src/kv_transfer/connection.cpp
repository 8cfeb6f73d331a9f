#include "kv_transfer/connection.h"

#include <chrono>

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

Connection::Connection(std::unique_ptr<asio::io_context> io, tcp::socket socket,
                       std::string peer_name)
    : io_(std::move(io)), socket_(std::move(socket)), peer_name_(std::move(peer_name)) {
  tune_socket(socket_);
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

Result<std::unique_ptr<Connection>> Connection::connect(const std::string& host, int port,
                                                        const ReadContext& ctx) {
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

Status Connection::run_until_done(const bool& done, const ReadContext& ctx, const char* what,
                                  size_t total_bytes, const size_t& transferred) {
  while (!done) {
    io_->run_one_for(kPollSlice);
    if (done) break;
    const bool cancelled = ctx.is_cancelled();
    if (cancelled || ctx.expired() || !open_.load()) {
      boost::system::error_code ec;
      socket_.close(ec);
      open_ = false;
      io_->run();  // let the aborted handler run
      if (cancelled) return aborted("KV peer {}: {} cancelled", peer_name_, what);
      if (ctx.expired()) {
        return deadline_exceeded("KV peer {}: {} of {} bytes timed out", peer_name_, what,
                                 total_bytes);
      }
      return unavailable("KV peer {}: connection shut down during {}", peer_name_, what);
    }
  }
  return Status::ok();
}

Status Connection::write_all(const std::vector<asio::const_buffer>& buffers,
                             const ReadContext& ctx) {
  if (!open_.load()) return unavailable("KV peer {}: connection is closed", peer_name_);
  bool done = false;
  boost::system::error_code ec;
  size_t transferred = 0;
  const size_t total = asio::buffer_size(buffers);
  io_->restart();
  asio::async_write(socket_, buffers, [&](const boost::system::error_code& e, size_t n) {
    ec = e;
    transferred = n;
    done = true;
  });
  BATON_RETURN_IF_ERROR(run_until_done(done, ctx, "write", total, transferred));
  if (ec) {
    open_ = false;
    return unavailable("KV peer {}: write failed after {} of {} bytes: {}", peer_name_,
                       transferred, total, ec.message());
  }
  return Status::ok();
}

Status Connection::read_all(const std::vector<asio::mutable_buffer>& buffers,
                            const ReadContext& ctx) {
  if (!open_.load()) return unavailable("KV peer {}: connection is closed", peer_name_);
  bool done = false;
  boost::system::error_code ec;
  size_t transferred = 0;
  const size_t total = asio::buffer_size(buffers);
  io_->restart();
  asio::async_read(socket_, buffers, [&](const boost::system::error_code& e, size_t n) {
    ec = e;
    transferred = n;
    done = true;
  });
  BATON_RETURN_IF_ERROR(run_until_done(done, ctx, "read", total, transferred));
  if (ec) {
    open_ = false;
    if (ec == asio::error::eof) {
      return unavailable("KV peer {}: connection closed by peer after {} of {} bytes", peer_name_,
                         transferred, total);
    }
    return unavailable("KV peer {}: read failed after {} of {} bytes: {}", peer_name_,
                       transferred, total, ec.message());
  }
  return Status::ok();
}

}  // namespace baton
