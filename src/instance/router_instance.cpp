#include "instance/router_instance.h"

#include <chrono>
#include <limits>
#include <optional>
#include <thread>

#include "common/json.h"
#include "common/log.h"

namespace baton::instance {

using namespace baton::router;

namespace {

// "a/,b,,c" -> {"a", "b", "c"}: trailing slashes and empty items dropped.
std::vector<std::string> split_urls(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string item = list.substr(start, end - start);
    while (!item.empty() && item.back() == '/') item.pop_back();
    if (!item.empty()) out.push_back(item);
    start = end + 1;
  }
  return out;
}

}  // namespace

Status RouterInstance::check(const RouterOptions& o) {
  if (o.mode != "pd" && o.mode != "agg") return invalid_argument("--mode {}: expected pd or agg", o.mode);
  if (o.discovery.empty()) {
    if (o.mode == "pd" && (o.prefill.empty() || o.decode.empty())) {
      return invalid_argument("--mode pd needs --prefill and --decode");
    }
    if (o.mode == "agg" && o.replica.empty()) return invalid_argument("--mode agg needs --replica");
  }
  router::KvIndex index;
  BATON_RETURN_IF_ERROR(make_routing_policy(o.policy, &index, {o.kv_load_weight}).status());
  BATON_RETURN_IF_ERROR(parse_disagg_mode(o.disagg).status());
  if (o.disagg_max_local_prefill_tokens < 0 || o.disagg_max_prefill_queue < 0 || !(o.disagg_hop_ms >= 0)) {
    return invalid_argument(
        "--disagg-max-local-prefill-tokens, --disagg-max-prefill-queue and --disagg-hop-ms must "
        "be >= 0");
  }
  if (o.role_control) {
    if (o.mode != "pd") return invalid_argument("--role-control needs --mode pd");
    BATON_RETURN_IF_ERROR(o.role.check());
  }
  return Status::ok();
}

Result<std::unique_ptr<RouterInstance>> RouterInstance::start(const RouterOptions& options) {
  BATON_RETURN_IF_ERROR(check(options));
  auto router = std::unique_ptr<RouterInstance>(new RouterInstance());
  BATON_RETURN_IF_ERROR(router->start_parts(options));
  return router;
}

Status RouterInstance::start_parts(const RouterOptions& o) {
  options_ = o;
  RouterServiceOptions sopts;
  sopts.mode = o.mode == "pd" ? RouterMode::kPd : RouterMode::kAgg;
  sopts.request_timeout_s = o.request_timeout_s;
  sopts.first_byte_timeout_s = o.first_byte_timeout_s;
  sopts.stream_kv = o.stream_kv;
  sopts.idle_timeout_s = o.idle_timeout_s;
  sopts.disagg.mode = parse_disagg_mode(o.disagg).value();
  sopts.disagg.max_local_prefill_tokens = o.disagg_max_local_prefill_tokens;
  sopts.disagg.max_prefill_queue = o.disagg_max_prefill_queue;
  sopts.disagg.hop_s = o.disagg_hop_ms / 1000.0;
  sopts.max_model_len = o.max_model_len;
  sopts.tokenize_prompts = o.policy == "kv_aware" || sopts.disagg.mode != DisaggMode::kAlways;
  const bool uses_kv = sopts.tokenize_prompts || o.role_control;  // role control reads the load the events carry
  if (!o.tokenizer.empty()) {
    auto tok = Tokenizer::load(o.tokenizer);
    if (!tok.is_ok()) return tok.status().with_context("loading the tokenizer of " + o.tokenizer);
    codec_ = std::make_unique<TokenizerCodec>(std::shared_ptr<const Tokenizer>(std::move(tok).value()),
                                              std::numeric_limits<int>::max());
  }
  // Without discovery only the mode's own lists count; with it, static lists
  // of any role add to the registry's instances.
  const bool all_lists = !o.discovery.empty();
  if (all_lists || sopts.mode == RouterMode::kPd) {
    for (const auto& u : split_urls(o.prefill)) pool_.add(u, PoolRole::kPrefill);
    for (const auto& u : split_urls(o.decode)) pool_.add(u, PoolRole::kDecode);
  }
  if (all_lists || sopts.mode == RouterMode::kAgg) {
    for (const auto& u : split_urls(o.replica)) pool_.add(u, PoolRole::kReplica);
  }
  if (!o.discovery.empty()) {
    discovery::WatcherCallbacks cbs;
    cbs.on_join = [this](const discovery::InstanceRecord& r) {
      if (auto role = pool_role_of(r.role)) {
        pool_.add(r.url, *role);
        BATON_LOG_INFO("{} {} joined", r.role, r.url);
      }
    };
    cbs.on_leave = [this](const discovery::InstanceRecord& r) {
      if (auto role = pool_role_of(r.role)) {
        pool_.remove(r.url, *role);
        BATON_LOG_INFO("{} {} left", r.role, r.url);
      }
    };
    watcher_ = std::make_unique<discovery::RegistryWatcher>(o.discovery, cbs);
    BATON_RETURN_IF_ERROR(watcher_->start());
  }
  BATON_ASSIGN_OR_RETURN(std::unique_ptr<RoutingPolicy> policy,
                         make_routing_policy(o.policy, &kv_index_, {o.kv_load_weight}));
  clients_ = std::make_unique<UpstreamClients>(o.num_io_threads);
  service_ = std::make_shared<RouterService>(sopts, pool_, std::move(policy), *clients_, &kv_index_, codec_.get());
  std::string api_key;  // the instances': their event streams and admin endpoint need it
  if (!o.instance_api_key_file.empty()) {
    auto key = read_file(o.instance_api_key_file);
    if (!key.is_ok()) return key.status().with_context("--instance-api-key-file");
    api_key = *key;
    while (!api_key.empty() && (api_key.back() == '\n' || api_key.back() == '\r')) api_key.pop_back();
  }
  if (uses_kv) {
    kv_events_ = std::make_unique<KvEventSubscriber>(pool_, *clients_, kv_index_, 0.5, api_key);
    kv_events_->start();
  }
  if (o.role_control) {
    role_control_ = std::make_unique<RoleControlLoop>(pool_, kv_index_, service_->metrics(), o.role, api_key);
    role_control_->start();
  }
  health_ = std::make_unique<HealthChecker>(pool_, o.health_interval_s);
  health_->check_all();
  health_->start();

  HttpServerOptions hopts;
  hopts.host = o.host;
  hopts.port = o.port;
  hopts.num_io_threads = o.num_io_threads;
  hopts.limits.max_body_bytes = o.max_body_bytes > 0 ? o.max_body_bytes : request_body_limit(o.max_model_len);
  hopts.max_connections = o.max_connections;
  hopts.limits.idle_timeout_s = 600.0;
  std::shared_ptr<RouterService> service = service_;
  server_ = std::make_unique<HttpServer>(hopts, [service](HttpRequest req, std::shared_ptr<HttpExchange> ex) {
    service->handle(std::move(req), std::move(ex));
  });
  if (Status st = server_->start(); !st.is_ok()) {
    server_.reset();
    return st;
  }
  port_ = server_->port();
  if (sopts.tokenize_prompts && !codec_) {
    BATON_LOG_WARN("no --tokenizer: only prompts sent as token ids are matched against the instances' KV caches");
  }
  BATON_LOG_INFO("baton proxy ({}, {}) listening on http://{}:{}; bodies up to {} bytes, {} connections", o.mode,
                 o.policy, o.host, port_, hopts.limits.max_body_bytes, hopts.max_connections);
  return Status::ok();
}

std::string RouterInstance::url() const { return "http://" + options_.host + ":" + std::to_string(port()); }

RouterInstance::~RouterInstance() { stop(); }

void RouterInstance::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (role_control_) role_control_->stop();
  if (kv_events_) kv_events_->stop();
  if (server_) {
    server_->stop_accepting();
    for (int i = 0; i < 100 && service_->num_in_flight() > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    server_->stop();
    // Before the server is destroyed: an upstream exchange's callback can hold
    // the last reference to a client session (UpstreamClients::stop).
    if (clients_) clients_->stop();
    server_.reset();  // closes the listening socket
  }
  if (health_) health_->stop();
  if (watcher_) watcher_->stop();
}

}  // namespace baton::instance
