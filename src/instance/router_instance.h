// The router (`baton proxy`) built in-process from one options struct: the
// instance pool (static lists and/or the etcd registry), the routing policy,
// health checks and the HTTP server. `baton proxy` fills the options from
// flags; tests start one next to in-process instances.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "discovery/registry_watcher.h"
#include "http/http_server.h"
#include "router/health_checker.h"
#include "router/kv_event_subscriber.h"
#include "router/kv_index.h"
#include "router/role_control_loop.h"
#include "router/router_service.h"
#include "server/tokenizer_codec.h"

namespace baton::instance {

struct RouterOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                       // 0 picks a free one (see RouterInstance::port)
  std::string mode = "pd";               // pd | agg
  std::string prefill, decode, replica;  // URL[,URL...]
  std::string policy = "round_robin";    // round_robin | least_loaded | prefix_aware | kv_aware
  double kv_load_weight = 256.0;         // kv_aware: uncached prompt tokens one request in flight weighs
  std::string tokenizer;          // a model folder with tokenizer.json: text prompts are tokenized as the instances do
  std::string disagg = "always";  // pd: always | conditional | auto (router/disagg_decider.h)
  int disagg_max_local_prefill_tokens = 512;
  int disagg_max_prefill_queue = 8;
  double disagg_hop_ms = 30.0;
  std::string discovery;  // etcd://HOST:PORT: instances from the registry
  double health_interval_s = 1.0;
  double request_timeout_s = 3600.0;
  double first_byte_timeout_s = 20.0;
  double idle_timeout_s = 20.0;
  bool stream_kv = false;  // PD: streamed KV (RouterServiceOptions::stream_kv)
  // pd: move instances between prefill and decode by load (router/role_control_loop.h).
  bool role_control = false;
  router::RoleControlOptions role;
  std::string instance_api_key_file;  // the instances' API key, for their admin endpoint
  int num_io_threads = 2;
  int64_t max_model_len = 131072;
  size_t max_body_bytes = 0;  // 0: request_body_limit(max_model_len)
  int max_connections = 4096;
};

class RouterInstance {
 public:
  // The options' own errors (a mode without its instances, an unknown
  // policy), before anything starts.
  static Status check(const RouterOptions& options);
  // Checks, builds, runs one health round, starts the health thread and the
  // server.
  static Result<std::unique_ptr<RouterInstance>> start(const RouterOptions& options);
  ~RouterInstance();  // stop()

  int port() const { return port_; }
  std::string url() const;
  router::RouterService& service() { return *service_; }
  router::InstancePool& pool() { return pool_; }

  // Stops accepting, lets requests in flight finish (10 s at most), then
  // closes the server (its port with it), the health checks and the
  // registry watch. Idempotent.
  void stop();

 private:
  RouterInstance() = default;
  Status start_parts(const RouterOptions& options);

  RouterOptions options_;
  router::InstancePool pool_;
  router::KvIndex kv_index_;  // outlives the clients, whose callbacks write it
  std::unique_ptr<TokenizerCodec> codec_;
  std::unique_ptr<discovery::RegistryWatcher> watcher_;
  std::unique_ptr<router::UpstreamClients> clients_;
  std::shared_ptr<router::RouterService> service_;
  std::unique_ptr<router::HealthChecker> health_;
  std::unique_ptr<router::KvEventSubscriber> kv_events_;
  std::unique_ptr<router::RoleControlLoop> role_control_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
  bool stopped_ = false;
};

}  // namespace baton::instance
