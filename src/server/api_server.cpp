#include "server/api_server.h"

#include <csignal>
#include <thread>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "common/check.h"
#include "common/clock.h"
#include "common/log.h"

namespace baton {

namespace {

// Polls cond every 10 ms for at most timeout_s; returns whether it held.
template <typename Cond>
bool wait_for(Cond cond, double timeout_s) {
  Stopwatch sw;
  while (!cond()) {
    if (sw.elapsed_s() >= timeout_s) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace

ApiServer::ApiServer(EngineApi& engine, const PromptCodec& codec, ApiServerOptions options)
    : options_(std::move(options)) {
  service_ = std::make_unique<OpenAiService>(engine, codec, options_.service);
  http_ = std::make_unique<HttpServer>(options_.http,
                                       [svc = service_.get()](HttpRequest req, std::shared_ptr<HttpExchange> ex) {
                                         svc->handle(std::move(req), std::move(ex));
                                       });
}

ApiServer::~ApiServer() {
  if (!stopped_) http_->stop();
}

Status ApiServer::start() {
  if (options_.handle_signals) {
    signal_ioc_ = std::make_unique<boost::asio::io_context>();
    signals_ = std::make_unique<boost::asio::signal_set>(*signal_ioc_, SIGINT, SIGTERM);
  }
  return http_->start();
}

std::string ApiServer::url() const {
  const std::string& host = options_.http.host;
  bool v6 = host.find(':') != std::string::npos;
  return fmt::format("http://{}{}{}:{}", v6 ? "[" : "", host, v6 ? "]" : "", port());
}

void ApiServer::run_until_signal() {
  BATON_CHECK(signals_ != nullptr, "run_until_signal() needs handle_signals and start()");
  int received = 0;
  signals_->async_wait([&](const boost::system::error_code& ec, int sig) {
    if (!ec) received = sig;
  });
  signal_ioc_->run();
  BATON_LOG_INFO("received {}: shutting down (grace {} s)", received == SIGTERM ? "SIGTERM" : "SIGINT",
                 options_.shutdown_grace_s);
  shutdown();
}

void ApiServer::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  http_->stop_accepting();
  service_->set_draining();
  http_->close_idle_connections();
  if (!wait_for([&] { return service_->num_active() == 0; }, options_.shutdown_grace_s)) {
    BATON_LOG_WARN("aborting {} requests still running after the grace period", service_->num_active());
    service_->abort_all();
    if (!wait_for([&] { return service_->num_active() == 0; }, 10.0)) {
      BATON_LOG_ERROR("{} requests did not finish after abort", service_->num_active());
    }
  }
  // Let the last responses reach their clients.
  wait_for(
      [&] {
        http_->close_idle_connections();
        return http_->num_connections() == 0;
      },
      2.0);
  http_->stop();
  BATON_LOG_INFO("server stopped");
}

}  // namespace baton
