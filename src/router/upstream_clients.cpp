#include "router/upstream_clients.h"

#include <boost/asio/strand.hpp>

#include "common/log.h"

namespace baton::router {

UpstreamClients::UpstreamClients(int num_threads) : work_(io_.get_executor()) {
  for (int i = 0; i < std::max(1, num_threads); ++i) {
    threads_.emplace_back([this] {
      // An exception from a handler leaves run(): log it and run on.
      for (;;) {
        try {
          io_.run();
          return;
        } catch (const std::exception& e) {
          BATON_LOG_ERROR("upstream I/O thread: unexpected error in a handler: {}", e.what());
        } catch (...) {
          BATON_LOG_ERROR("upstream I/O thread: unexpected error in a handler");
        }
      }
    });
  }
}

UpstreamClients::~UpstreamClients() { stop(); }

void UpstreamClients::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    for (auto& [url, client] : clients_) client->cancel_all();
  }
  work_.reset();
  io_.stop();
  for (auto& t : threads_) t.join();
  std::lock_guard<std::mutex> lock(mu_);
  clients_.clear();
}

Result<std::shared_ptr<http::HttpClient>> UpstreamClients::get(const std::string& url) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return unavailable("the router is stopping: no new upstream connection to {}", url);
  auto it = clients_.find(url);
  if (it != clients_.end()) return it->second;
  BATON_ASSIGN_OR_RETURN(http::Url parsed, http::parse_url(url));
  http::ClientOptions options;
  options.read_buffer_bytes = 16 << 10;
  // Each client on its own strand: its pool is touched by one thread at a time.
  BATON_ASSIGN_OR_RETURN(auto client, http::HttpClient::create(boost::asio::make_strand(io_), parsed, options));
  clients_[url] = client;
  return client;
}

}  // namespace baton::router
