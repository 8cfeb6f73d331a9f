// HTTP clients to the instances, one per URL, on the router's own I/O
// threads (connections are pooled per instance).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "common/status.h"
#include "http/http_client.h"

namespace baton::router {

class UpstreamClients {
 public:
  explicit UpstreamClients(int num_threads = 1);
  ~UpstreamClients();  // stop()

  // Cancels every exchange and joins the threads; idempotent. An exchange's
  // callback can hold the last reference to a client session of the
  // router's HTTP server, so the owner calls this after stopping that server
  // and before destroying it: the session then ends while its io_context
  // still exists.
  void stop();

  // The client of `url` (created on first use).
  Result<std::shared_ptr<http::HttpClient>> get(const std::string& url);

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  bool stopped_ = false;  // under mu_
  std::map<std::string, std::shared_ptr<http::HttpClient>> clients_;
};

}  // namespace baton::router
