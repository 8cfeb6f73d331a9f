#include "http/http_session.h"

#include <chrono>

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>

#include "common/log.h"

namespace baton {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

std::chrono::steady_clock::duration seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(s));
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

std::string error_body(const std::string& message, const char* type) {
  // Same shape as ApiError::to_json, written here to keep the session JSON-free.
  std::string escaped;
  for (char c : message) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  return fmt::format(R"({{"error":{{"message":"{}","type":"{}","param":null,"code":null}}}})", escaped, type);
}

}  // namespace

std::string serialize_http_response(const HttpResponse& r, bool keep_alive) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n",
                                r.status, reason_phrase(r.status), r.content_type, r.body.size(),
                                keep_alive ? "keep-alive" : "close");
  for (const auto& [k, v] : r.headers) out += k + ": " + v + "\r\n";
  out += "\r\n";
  out += r.body;
  return out;
}

HttpSession::HttpSession(net::ip::tcp::socket socket, std::shared_ptr<HttpSessionContext> ctx)
    : stream_(std::move(socket)), ctx_(std::move(ctx)), heartbeat_(stream_.get_executor()) {}

HttpSession::~HttpSession() {
  std::lock_guard<std::mutex> lock(ctx_->mu);
  ctx_->sessions.erase(this);
}

net::any_io_executor HttpSession::executor() { return stream_.get_executor(); }

void HttpSession::start() {
  {
    std::lock_guard<std::mutex> lock(ctx_->mu);
    ctx_->sessions[this] = weak_from_this();
  }
  beast::error_code ec;
  stream_.socket().set_option(net::ip::tcp::no_delay(true), ec);
  net::post(stream_.get_executor(), [self = shared_from_this()] { self->do_read(); });
}

void HttpSession::close_if_idle() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    if (self->state_ == State::kReading || self->state_ == State::kAwaitNext) self->close_now();
  });
}

void HttpSession::do_read() {
  if (ctx_->draining.load()) return close_now();
  state_ = State::kReading;
  parser_.emplace();
  parser_->body_limit(ctx_->limits.max_body_bytes);
  parser_->header_limit(static_cast<uint32_t>(ctx_->limits.max_header_bytes));
  stream_.expires_after(seconds(first_request_ ? ctx_->limits.header_timeout_s : ctx_->limits.idle_timeout_s));
  http::async_read_header(stream_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
}

// Clients that send "Expect: 100-continue" (curl does for bodies over 1 KiB)
// wait for the interim response before sending the body.
void HttpSession::on_header(beast::error_code ec) {
  if (state_ != State::kReading) return;
  if (ec) return on_read(ec);
  if (beast::iequals(parser_->get()[http::field::expect], "100-continue") && !parser_->is_done()) {
    static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    net::async_write(stream_, net::buffer(kContinue), [self = shared_from_this()](beast::error_code ec2, size_t) {
      if (ec2) return self->on_read(ec2);
      self->read_body();
    });
    return;
  }
  read_body();
}

void HttpSession::read_body() {
  if (state_ != State::kReading) return;
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
}

void HttpSession::on_read(beast::error_code ec) {
  if (state_ != State::kReading) return;  // closed meanwhile
  if (ec == http::error::body_limit) {
    return reply_and_close(413, fmt::format("request body exceeds the limit of {} bytes", ctx_->limits.max_body_bytes));
  }
  if (ec == http::error::header_limit) return reply_and_close(431, "request headers too large");
  if (ec && ec.category() == http::make_error_code(http::error::bad_version).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message) {
    return reply_and_close(400, "malformed HTTP request: " + ec.message());
  }
  if (ec) {
    if (ec == beast::error::timeout) BATON_LOG_DEBUG("closing a connection: request not received in time");
    return close_now();
  }
  auto& msg = parser_->get();
  HttpRequest req;
  req.method = std::string(msg.method_string());
  auto target = msg.target();
  req.path = std::string(target.substr(0, target.find('?')));
  for (const auto& field : msg) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    req.headers[name] = std::string(field.value());
  }
  req.body = std::move(msg.body());
  keep_alive_ = msg.keep_alive();
  first_request_ = false;
  state_ = State::kHandling;
  stream_.expires_never();
  start_watch();
  // The last guard of every request: whatever the handler throws becomes a
  // 500 for this request and a log line (reply() is safe in any state).
  try {
    ctx_->handler(std::move(req), shared_from_this());
  } catch (const std::exception& e) {
    handler_failed(e.what());
  } catch (...) {
    handler_failed("unknown exception");
  }
}

void HttpSession::handler_failed(const char* what) {
  BATON_LOG_ERROR("request handler failed: {}", what);
  HttpResponse r;
  r.status = 500;
  r.body = error_body("internal error while handling the request", "internal_error");
  reply(std::move(r));
}

void HttpSession::reply_and_close(int status, const std::string& message) {
  state_ = State::kHandling;
  keep_alive_ = false;
  stream_.expires_never();
  HttpResponse r;
  r.status = status;
  r.body = error_body(message, "invalid_request_error");
  reply(std::move(r));
}

void HttpSession::start_watch() {
  if (watching_ || state_ == State::kClosed) return;
  // A client that pipelines a lot while a request runs: stop reading for now.
  if (buffer_.size() > 256 * 1024) return;
  watching_ = true;
  stream_.expires_never();
  stream_.async_read_some(buffer_.prepare(4096),
                          [self = shared_from_this()](beast::error_code ec, size_t n) { self->on_watch(ec, n); });
}

void HttpSession::on_watch(beast::error_code ec, size_t n) {
  watching_ = false;
  if (state_ == State::kClosed) return;
  if (state_ == State::kClosing) {
    if (ec && ec != net::error::operation_aborted) return close_now();
    return drain();
  }
  if (!ec) buffer_.commit(n);
  if (state_ == State::kAwaitNext) {
    if (ec && ec != net::error::operation_aborted) return close_now();
    return do_read();
  }
  if (ec) return lost_client();
  start_watch();
}

void HttpSession::lost_client() {
  if (disconnected_) return;
  disconnected_ = true;
  bool in_flight = state_ == State::kHandling || state_ == State::kStreaming;
  close_now();
  if (in_flight && on_disconnect_) {
    auto handler = std::move(on_disconnect_);
    on_disconnect_ = nullptr;
    handler();
  }
}

void HttpSession::close_now() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  out_.clear();
  heartbeat_.cancel();
  beast::error_code ec;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
  stream_.close();
}

void HttpSession::set_disconnect_handler(std::function<void()> on_disconnect) {
  on_disconnect_ = std::move(on_disconnect);
}

void HttpSession::reply(HttpResponse response) {
  if (response_done_) return;  // answered already
  if (state_ == State::kStreaming) {
    // Events have started: the answer becomes the stream's last event.
    send_event(response.body);
    return end_events();
  }
  if (state_ != State::kHandling) return;  // closed, or no request to answer
  bool keep = keep_alive_ && !ctx_->draining.load();
  keep_alive_ = keep;
  response_done_ = true;
  queue(serialize_http_response(response, keep));
}

void HttpSession::start_events() {
  if (state_ != State::kHandling || response_done_) return;
  state_ = State::kStreaming;
  queue(
      fmt::format("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                  "Connection: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
                  keep_alive_ ? "keep-alive" : "close"));
  arm_heartbeat();
}

void HttpSession::arm_heartbeat() {
  if (ctx_->limits.event_heartbeat_s <= 0) return;
  sent_since_heartbeat_ = false;
  heartbeat_.expires_after(seconds(ctx_->limits.event_heartbeat_s));
  heartbeat_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->state_ != State::kStreaming || self->response_done_) return;
    if (!self->sent_since_heartbeat_) self->queue("3\r\n:\n\n\r\n");  // one SSE comment line, chunked
    self->arm_heartbeat();
  });
}

void HttpSession::send_event(std::string_view data) {
  if (state_ != State::kStreaming || response_done_) return;
  sent_since_heartbeat_ = true;
  size_t payload = data.size() + 8;  // "data: " + data + "\n\n"
  out_ += fmt::format("{:x}\r\ndata: ", payload);
  out_ += data;
  out_ += "\n\n\r\n";
  if (!writing_) return flush();
  if (out_.size() > ctx_->limits.max_pending_bytes) {
    BATON_LOG_WARN("a client fell {} bytes behind its streamed response (limit {}): closing it", out_.size(),
                   ctx_->limits.max_pending_bytes);
    lost_client();
  }
}

void HttpSession::end_events() {
  if (state_ != State::kStreaming || response_done_) return;
  response_done_ = true;
  heartbeat_.cancel();
  queue("0\r\n\r\n");
}

void HttpSession::queue(std::string_view bytes) {
  if (state_ == State::kClosed) return;
  out_ += bytes;
  if (!writing_) flush();
}

void HttpSession::flush() {
  if (out_.empty()) return;
  writing_ = true;
  inflight_.swap(out_);
  out_.clear();
  stream_.expires_after(seconds(ctx_->limits.write_timeout_s));
  net::async_write(stream_, net::buffer(inflight_),
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->on_write(ec); });
}

void HttpSession::on_write(beast::error_code ec) {
  writing_ = false;
  inflight_.clear();
  if (state_ == State::kClosed) return;
  if (ec) return lost_client();
  if (!out_.empty()) return flush();
  if (response_done_) finish_response();
}

void HttpSession::finish_response() {
  response_done_ = false;
  on_disconnect_ = nullptr;
  if (!keep_alive_ || ctx_->draining.load()) return graceful_close();
  state_ = State::kAwaitNext;
  if (watching_) {
    stream_.cancel();  // on_watch continues with do_read
  } else {
    do_read();
  }
}

// Half-closes, then reads until the client closes, so that it sees the
// response rather than a reset (e.g. after a 413 while it was still sending).
void HttpSession::graceful_close() {
  state_ = State::kClosing;
  beast::error_code ec;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ec);
  if (watching_) {
    stream_.cancel();
  } else {
    drain();
  }
}

void HttpSession::drain() {
  drain_buf_.resize(4096);
  stream_.expires_after(std::chrono::seconds(2));
  watching_ = true;
  stream_.async_read_some(net::buffer(drain_buf_), [self = shared_from_this()](beast::error_code ec, size_t) {
    self->watching_ = false;
    if (ec) return self->close_now();
    self->drain();
  });
}

}  // namespace baton
