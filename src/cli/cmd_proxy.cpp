// `baton proxy`: the PD router (or an agg load balancer) serving the OpenAI
// API in front of baton instances.
#include <csignal>
#include <optional>
#include <iostream>
#include <sstream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "cli/cli_util.h"
#include "cli/command.h"
#include "common/log.h"
#include "discovery/registry_watcher.h"
#include "http/http_server.h"
#include "router/health_checker.h"
#include "router/router_service.h"

namespace {

using namespace baton;
using namespace baton::router;

std::vector<std::string> split_urls(const std::string& list) {
  std::vector<std::string> out;
  for (std::string item : cli::split_commas(list)) {
    while (!item.empty() && item.back() == '/') item.pop_back();
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

cli::RunFn setup(CLI::App& sub) {
  struct Opts {
    std::string host = "127.0.0.1";
    int port = 8000;
    std::string mode = "pd";
    std::string prefill, decode, replica;
    std::string policy = "round_robin";
    std::string discovery;
    double health_interval_s = 1.0;
    double request_timeout_s = 3600.0;
    double first_byte_timeout_s = 20.0;
    double idle_timeout_s = 20.0;
    int num_io_threads = 2;
    int64_t max_model_len = 131072;
    size_t max_body_bytes = 0;  // 0: request_body_limit(max_model_len)
    int max_connections = 4096;
  };
  auto o = std::make_shared<Opts>();
  sub.add_option("--host", o->host, "Address to bind");
  sub.add_option("--port", o->port, "Port to listen on");
  sub.add_option("--mode", o->mode, "pd (prefill then decode) or agg (balance over replicas)")
      ->check(CLI::IsMember({"pd", "agg"}));
  sub.add_option("--prefill", o->prefill, "Prefill instances, URL[,URL...] (pd)");
  sub.add_option("--decode", o->decode, "Decode instances, URL[,URL...] (pd)");
  sub.add_option("--replica", o->replica, "Replicas, URL[,URL...] (agg)");
  sub.add_option("--policy", o->policy, "round_robin, least_loaded or prefix_aware");
  sub.add_option("--discovery", o->discovery,
                 "etcd://HOST:PORT: take instances from the etcd registry (joins and leaves live)");
  sub.add_option("--health-interval-s", o->health_interval_s, "Seconds between health checks");
  sub.add_option("--request-timeout-s", o->request_timeout_s, "Deadline of one upstream exchange");
  sub.add_option("--num-io-threads", o->num_io_threads, "Threads serving clients (and as many for upstreams)");
  sub.add_option("--upstream-first-byte-timeout-s", o->first_byte_timeout_s,
                 "Streamed requests: an instance that sends no response headers within this is given up (0 = off)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub.add_option("--upstream-idle-timeout-s", o->idle_timeout_s,
                 "Streamed requests: an instance silent this long mid-stream is given up; baton instances send a "
                 "heartbeat every 5 s (0 = off)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub.add_option("--max-model-len", o->max_model_len,
                 "The instances' context length, for the default --max-body-bytes")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--max-body-bytes", o->max_body_bytes,
                 "Largest request body, 413 beyond (0: 1 MiB + 32 bytes per token of --max-model-len)")
      ->capture_default_str();
  sub.add_option("--max-connections", o->max_connections,
                 "Open client connections at most; beyond them a new one gets 503 and is closed (0 = no cap)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  return [o] {
    // Two descriptors per client connection (its own and one upstream), and a margin.
    cli::raise_fd_limit(2L * o->max_connections + 256);
    RouterServiceOptions sopts;
    sopts.mode = o->mode == "pd" ? RouterMode::kPd : RouterMode::kAgg;
    sopts.request_timeout_s = o->request_timeout_s;
    sopts.first_byte_timeout_s = o->first_byte_timeout_s;
    sopts.idle_timeout_s = o->idle_timeout_s;
    InstancePool pool;
    if (!o->discovery.empty()) {
      // Instances come from etcd; static lists may add more.
    } else if (sopts.mode == RouterMode::kPd) {
      if (o->prefill.empty() || o->decode.empty()) {
        std::cerr << "baton proxy: --mode pd needs --prefill and --decode\n";
        return 2;
      }
      for (const auto& u : split_urls(o->prefill)) pool.add(u, PoolRole::kPrefill);
      for (const auto& u : split_urls(o->decode)) pool.add(u, PoolRole::kDecode);
    } else {
      if (o->replica.empty()) {
        std::cerr << "baton proxy: --mode agg needs --replica\n";
        return 2;
      }
      for (const auto& u : split_urls(o->replica)) pool.add(u, PoolRole::kReplica);
    }
    if (!o->discovery.empty()) {
      for (const auto& u : split_urls(o->prefill)) pool.add(u, PoolRole::kPrefill);
      for (const auto& u : split_urls(o->decode)) pool.add(u, PoolRole::kDecode);
      for (const auto& u : split_urls(o->replica)) pool.add(u, PoolRole::kReplica);
    }
    std::unique_ptr<discovery::RegistryWatcher> watcher;
    if (!o->discovery.empty()) {
      auto role_of = [](const std::string& role) -> std::optional<PoolRole> {
        if (role == "prefill") return PoolRole::kPrefill;
        if (role == "decode") return PoolRole::kDecode;
        if (role == "agg") return PoolRole::kReplica;
        return std::nullopt;
      };
      discovery::WatcherCallbacks cbs;
      cbs.on_join = [&pool, role_of](const discovery::InstanceRecord& r) {
        if (auto role = role_of(r.role)) {
          pool.add(r.url, *role);
          BATON_LOG_INFO("{} {} joined", r.role, r.url);
        }
      };
      cbs.on_leave = [&pool, role_of](const discovery::InstanceRecord& r) {
        if (auto role = role_of(r.role)) {
          pool.remove(r.url, *role);
          BATON_LOG_INFO("{} {} left", r.role, r.url);
        }
      };
      watcher = std::make_unique<discovery::RegistryWatcher>(o->discovery, cbs);
      Status wst = watcher->start();
      if (!wst.is_ok()) {
        std::cerr << "baton proxy: " << wst.message() << "\n";
        return 1;
      }
    }
    auto policy = make_routing_policy(o->policy);
    if (!policy.is_ok()) {
      std::cerr << "baton proxy: " << policy.status().message() << "\n";
      return 2;
    }
    UpstreamClients clients(o->num_io_threads);
    auto service = std::make_shared<RouterService>(sopts, pool, std::move(policy).value(), clients);
    HealthChecker health(pool, o->health_interval_s);
    health.check_all();
    health.start();

    HttpServerOptions hopts;
    hopts.host = o->host;
    hopts.port = o->port;
    hopts.num_io_threads = o->num_io_threads;
    hopts.limits.max_body_bytes = o->max_body_bytes > 0 ? o->max_body_bytes : request_body_limit(o->max_model_len);
    hopts.max_connections = o->max_connections;
    hopts.limits.idle_timeout_s = 600.0;
    HttpServer server(hopts, [service](HttpRequest req, std::shared_ptr<HttpExchange> ex) {
      service->handle(std::move(req), std::move(ex));
    });
    Status st = server.start();
    if (!st.is_ok()) {
      std::cerr << "baton proxy: " << st.message() << "\n";
      return 1;
    }
    BATON_LOG_INFO("baton proxy ({}, {}) listening on http://{}:{}; bodies up to {} bytes, {} connections", o->mode,
                   o->policy, o->host, server.port(), hopts.limits.max_body_bytes, hopts.max_connections);

    boost::asio::io_context ioc;
    boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([](const boost::system::error_code&, int) {});
    ioc.run();
    BATON_LOG_INFO("baton proxy: stopping");
    server.stop_accepting();
    for (int i = 0; i < 100 && service->num_in_flight() > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    server.stop();
    health.stop();
    if (watcher) watcher->stop();
    return 0;
  };
}

}  // namespace

baton::cli::CommandSpec baton::cli::proxy_command() {
  return {"proxy", "Route OpenAI requests over baton instances (PD or agg)", &setup};
}
