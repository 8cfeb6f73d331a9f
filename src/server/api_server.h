// `baton serve` minus the command line: the HTTP server, the OpenAI service
// over an engine, and graceful shutdown on SIGTERM/SIGINT.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "engine/async_engine_api.h"
#include "http/http_server.h"
#include "server/openai_service.h"

namespace baton {

struct ApiServerOptions {
  HttpServerOptions http;
  OpenAiServiceOptions service;
  double shutdown_grace_s = 30.0;  // in-flight requests may finish within this
  bool handle_signals = false;     // catch SIGINT/SIGTERM from start() on (run_until_signal)
};

class ApiServer {
 public:
  ApiServer(EngineApi& engine, const PromptCodec& codec, ApiServerOptions options);
  ~ApiServer();

  // Binds and starts serving. With handle_signals, SIGINT/SIGTERM are caught
  // from here on (for run_until_signal), so a signal that arrives early is
  // not lost.
  Status start();
  int port() const { return http_->port(); }
  std::string url() const;

  // Blocks until SIGINT or SIGTERM arrives, then shutdown().
  void run_until_signal();
  // Stops accepting, lets in-flight requests finish for the grace period,
  // aborts the rest (their responses end with finish_reason "abort"), closes
  // the connections and stops the I/O threads. Idempotent.
  void shutdown();

  OpenAiService& service() { return *service_; }

 private:
  ApiServerOptions options_;
  std::unique_ptr<OpenAiService> service_;
  std::unique_ptr<HttpServer> http_;
  bool stopped_ = false;
  std::unique_ptr<boost::asio::io_context> signal_ioc_;
  std::unique_ptr<boost::asio::signal_set> signals_;
};

}  // namespace baton
