// The HTTP server: one acceptor and a small fixed pool of I/O threads running
// one io_context; each connection is an HttpSession on its own strand.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/status.h"
#include "http/http_session.h"

namespace baton {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;  // 0 picks a free port (see port())
  int num_io_threads = 2;
  // Open connections at most; one more is answered 503 at once and closed
  // (a client holding thousands of idle sockets cannot starve the others of
  // descriptors and memory). 0 = no cap.
  int max_connections = 4096;
  HttpLimits limits;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the I/O threads.
  Status start();
  int port() const { return port_; }

  // Shutdown, in order: stop accepting and refuse further requests on open
  // connections; close connections waiting for a request; stop.
  void stop_accepting();
  void close_idle_connections();
  int num_connections() const;
  // Connections refused because max_connections were open.
  uint64_t num_refused_connections() const { return num_refused_.load(); }
  void stop();  // stops the I/O threads; open connections are dropped

 private:
  void do_accept();
  void refuse(boost::asio::ip::tcp::socket socket);
  void run_io_thread();

  HttpServerOptions options_;
  std::shared_ptr<HttpSessionContext> ctx_;
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer accept_retry_;
  std::atomic<bool> accepting_{false};
  std::atomic<uint64_t> num_refused_{0};
  int port_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace baton
