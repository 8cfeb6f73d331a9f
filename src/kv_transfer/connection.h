// A blocking TCP connection with deadlines and cancellation, over Boost.Asio.
// Each Connection owns its io_context, so one thread can drive it without a
// shared event loop; every call returns by its deadline (the socket is then
// closed) and soon after the cancel flag turns true.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <utility>  // before asio: Boost 1.74 awaitable.hpp needs std::exchange
#include <vector>

#include <boost/asio.hpp>

#include "common/status.h"
#include "kv_transfer/transport.h"

namespace baton {

class Connection {
 public:
  explicit Connection(std::unique_ptr<boost::asio::io_context> io, boost::asio::ip::tcp::socket socket,
                      std::string peer_name);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  static Result<std::unique_ptr<Connection>> connect(const std::string& host, int port, const ReadContext& ctx);

  // Writes / reads every byte of the buffers, or fails: UNAVAILABLE when the
  // peer closed or reset, DEADLINE_EXCEEDED, ABORTED when cancelled.
  Status write_all(const std::vector<boost::asio::const_buffer>& buffers, const ReadContext& ctx);
  Status read_all(const std::vector<boost::asio::mutable_buffer>& buffers, const ReadContext& ctx);
  Status write_all(const void* data, size_t num_bytes, const ReadContext& ctx) {
    return write_all({boost::asio::buffer(data, num_bytes)}, ctx);
  }
  Status read_all(void* data, size_t num_bytes, const ReadContext& ctx) {
    return read_all({boost::asio::buffer(data, num_bytes)}, ctx);
  }

  // Closes the socket; safe from another thread to unblock a pending call.
  void shutdown();
  bool is_open() const { return open_.load(); }
  // Whether the peer has closed its end (an EOF or error is waiting), checked
  // without blocking or consuming data. For pooled connections.
  bool peer_closed();
  int native_handle() { return socket_.native_handle(); }
  const std::string& peer_name() const { return peer_name_; }

 private:
  std::unique_ptr<boost::asio::io_context> io_;
  boost::asio::ip::tcp::socket socket_;
  std::string peer_name_;
  std::atomic<bool> open_{true};
};

}  // namespace baton
