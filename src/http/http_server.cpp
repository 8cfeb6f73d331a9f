#include "http/http_server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include "common/log.h"

namespace baton {

namespace net = boost::asio;
using tcp = net::ip::tcp;

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler)
    : options_(std::move(options)),
      ctx_(std::make_shared<HttpSessionContext>()),
      ioc_(std::max(1, options_.num_io_threads)),
      acceptor_(net::make_strand(ioc_)),
      accept_retry_(acceptor_.get_executor()) {
  ctx_->limits = options_.limits;
  ctx_->handler = std::move(handler);
}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::start() {
  boost::system::error_code ec;
  auto addr = net::ip::make_address(options_.host, ec);
  if (ec) return invalid_argument("bad --host '{}': {}", options_.host, ec.message());
  if (options_.port < 0 || options_.port > 65535) return invalid_argument("bad --port {}", options_.port);
  tcp::endpoint endpoint(addr, static_cast<unsigned short>(options_.port));
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) return unavailable("cannot open a socket: {}", ec.message());
  acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  acceptor_.bind(endpoint, ec);
  if (ec) return unavailable("cannot bind {}:{}: {}", options_.host, options_.port, ec.message());
  acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return unavailable("cannot listen on {}:{}: {}", options_.host, options_.port, ec.message());
  port_ = acceptor_.local_endpoint().port();
  accepting_ = true;
  net::post(acceptor_.get_executor(), [this] { do_accept(); });
  for (int i = 0; i < std::max(1, options_.num_io_threads); ++i) {
    threads_.emplace_back([this] { run_io_thread(); });
  }
  return Status::ok();
}

// An exception thrown by a completion handler (an engine output posted to a
// connection, an upstream's answer) leaves io_context::run(); the thread logs
// it and runs on instead of taking the process down.
void HttpServer::run_io_thread() {
  for (;;) {
    try {
      ioc_.run();
      return;
    } catch (const std::exception& e) {
      BATON_LOG_ERROR("HTTP I/O thread: unexpected error in a handler: {}", e.what());
    } catch (...) {
      BATON_LOG_ERROR("HTTP I/O thread: unexpected error in a handler");
    }
  }
}

void HttpServer::refuse(tcp::socket socket) {
  uint64_t n = ++num_refused_;
  if (n == 1 || n % 1000 == 0) {
    BATON_LOG_WARN("refusing connections: {} open (--max-connections); {} refused so far", options_.max_connections, n);
  }
  // Best effort, without blocking: a 503 that fits in the socket buffer, then close.
  static const std::string kBusy = [] {
    HttpResponse r;
    r.status = 503;
    r.body = R"({"error":{"message":"too many open connections; retry later","type":"service_unavailable",)"
             R"("param":null,"code":null}})";
    r.headers.emplace_back("Retry-After", "1");
    return serialize_http_response(r, /*keep_alive=*/false);
  }();
  boost::system::error_code ec;
  socket.non_blocking(true, ec);
  socket.write_some(net::buffer(kBusy), ec);
  socket.shutdown(tcp::socket::shutdown_both, ec);
  socket.close(ec);
}

void HttpServer::do_accept() {
  if (!accepting_) return;
  acceptor_.async_accept(net::make_strand(ioc_), [this](boost::system::error_code ec, tcp::socket socket) {
    if (!accepting_) return;
    if (!ec) {
      if (options_.max_connections > 0 && num_connections() >= options_.max_connections) {
        refuse(std::move(socket));
      } else {
        std::make_shared<HttpSession>(std::move(socket), ctx_)->start();
      }
      return do_accept();
    }
    if (ec == net::error::operation_aborted) return;
    // Out of file descriptors and the like: back off instead of spinning.
    BATON_LOG_WARN("accept failed: {}", ec.message());
    accept_retry_.expires_after(std::chrono::milliseconds(50));
    accept_retry_.async_wait([this](boost::system::error_code) { do_accept(); });
  });
}

void HttpServer::stop_accepting() {
  ctx_->draining = true;
  net::post(acceptor_.get_executor(), [this] {
    accepting_ = false;
    boost::system::error_code ec;
    acceptor_.close(ec);
    accept_retry_.cancel();
  });
}

void HttpServer::close_idle_connections() {
  std::vector<std::shared_ptr<HttpSession>> live;
  {
    std::lock_guard<std::mutex> lock(ctx_->mu);
    for (auto& [ptr, weak] : ctx_->sessions) {
      if (auto s = weak.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->close_if_idle();
}

int HttpServer::num_connections() const {
  std::lock_guard<std::mutex> lock(ctx_->mu);
  return static_cast<int>(ctx_->sessions.size());
}

void HttpServer::stop() {
  if (threads_.empty()) return;
  accepting_ = false;
  ioc_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  // No thread runs a handler now. Closed, the port refuses a connection at
  // once; left open (stop_accepting's close may not have run), a client's
  // connection would wait in the backlog until its own timeout.
  boost::system::error_code ec;
  acceptor_.close(ec);
}

}  // namespace baton
