// One client connection (Boost.Beast over a strand): reads requests with a
// header timeout and a body limit, hands each to the handler, writes whole
// responses or chunked server-sent events, watches for the client going away
// while a request is in flight, and serves keep-alive requests in turn.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "http/http_exchange.h"

namespace baton {

struct HttpLimits {
  size_t max_body_bytes = 1 << 20;
  size_t max_header_bytes = 16 << 10;
  double header_timeout_s = 10.0;  // a whole request must arrive within this
  double idle_timeout_s = 60.0;    // keep-alive connections waiting for a request
  double write_timeout_s = 30.0;   // one write that makes no progress
  // A streamed response's bytes queued behind a write still in progress. A
  // client that falls this far behind is too slow: the response is abandoned
  // as for a stalled write (its request aborted), so memory stays bounded even
  // when the events come faster than the write timeout can be noticed.
  size_t max_pending_bytes = 64 << 20;
  // A streamed response that has sent nothing for this long gets an SSE
  // comment line (":\n\n", ignored by SSE clients), so that a peer with an
  // inter-chunk idle timeout (baton proxy) tells a live but busy server (a
  // request queued, a long prefill) from a stopped one. 0 = never.
  double event_heartbeat_s = 5.0;
};

// The request body limit for a model of `max_model_len` tokens: its whole
// context as a prompt fits, as text or as token ids, with room for the rest
// of the request. 32 bytes per token covers the worst realistic text (4 on
// average for English; a JSON-escaped non-ASCII character is 6 bytes for about
// one token) and ids ("151643, " is 8); 1 MiB is for the other fields and
// chat structure. 128K tokens -> 5 MiB.
inline constexpr size_t kBodyBytesPerToken = 32;
inline constexpr size_t kBodyBytesOverhead = 1 << 20;
inline size_t request_body_limit(int64_t max_model_len) {
  return kBodyBytesOverhead + kBodyBytesPerToken * static_cast<size_t>(max_model_len > 0 ? max_model_len : 0);
}

class HttpSession;

// Shared by the server and its sessions (sessions may outlive the acceptor).
struct HttpSessionContext {
  HttpLimits limits;
  HttpHandler handler;
  std::atomic<bool> draining{false};  // no new requests: finish the current one, then close
  std::mutex mu;
  std::unordered_map<HttpSession*, std::weak_ptr<HttpSession>> sessions;
};

class HttpSession : public HttpExchange, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(boost::asio::ip::tcp::socket socket, std::shared_ptr<HttpSessionContext> ctx);
  ~HttpSession() override;

  void start();
  // Closes the connection if it is between requests (for shutdown).
  void close_if_idle();

  boost::asio::any_io_executor executor() override;
  void reply(HttpResponse response) override;
  void start_events() override;
  void send_event(std::string_view data) override;
  void end_events() override;
  void set_disconnect_handler(std::function<void()> on_disconnect) override;
  bool disconnected() const override { return disconnected_; }

 private:
  enum class State { kReading, kHandling, kStreaming, kAwaitNext, kClosing, kClosed };

  void do_read();
  void on_header(boost::beast::error_code ec);
  void read_body();
  void on_read(boost::beast::error_code ec);
  void reply_and_close(int status, const std::string& message);
  void handler_failed(const char* what);
  void arm_heartbeat();
  void start_watch();
  void on_watch(boost::beast::error_code ec, size_t n);
  void queue(std::string_view bytes);
  void flush();
  void on_write(boost::beast::error_code ec);
  void finish_response();
  void graceful_close();
  void drain();
  void lost_client();
  void close_now();

  boost::beast::tcp_stream stream_;
  std::shared_ptr<HttpSessionContext> ctx_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  State state_ = State::kReading;
  bool first_request_ = true;
  bool keep_alive_ = true;
  bool watching_ = false;
  bool writing_ = false;
  bool response_done_ = false;
  bool disconnected_ = false;
  std::string out_;       // queued bytes
  std::string inflight_;  // bytes being written
  std::string drain_buf_;
  boost::asio::steady_timer heartbeat_;
  bool sent_since_heartbeat_ = false;
  std::function<void()> on_disconnect_;
};

// "HTTP/1.1 <status> <reason>\r\n..." for a whole response.
std::string serialize_http_response(const HttpResponse& r, bool keep_alive);

}  // namespace baton
