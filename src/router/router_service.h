// `baton proxy` minus the command line: the OpenAI API in front of a set of
// instances. agg mode: each request goes to one replica. pd mode (DESIGN.md
// "PD handoff"): the request goes to a prefill instance with max_tokens=1 and
// kv_transfer_params {do_remote_decode: true}; its answer's
// kv_transfer_params go with the original request to a decode instance, whose
// answer (streamed or not) goes back to the client. A client that goes away
// cancels the upstream request wherever it is, so that instance aborts it.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "common/metrics_registry.h"
#include "http/http_exchange.h"
#include "router/disagg_decider.h"
#include "router/instance_pool.h"
#include "router/kv_index.h"
#include "router/routing_policy.h"
#include "router/upstream_clients.h"
#include "server/openai_request.h"  // PromptCodec

namespace baton::router {

enum class RouterMode { kAgg, kPd };

struct RouterServiceOptions {
  RouterMode mode = RouterMode::kAgg;
  double request_timeout_s = 3600.0;  // one upstream exchange
  // Streamed upstream exchanges (0 = off): a baton instance answers a
  // streamed request's headers at once and sends a byte at least every
  // event_heartbeat_s (5 s), so silence past these means a stopped instance.
  double first_byte_timeout_s = 20.0;
  double idle_timeout_s = 20.0;
  // PD, streamed KV (docs/pd.md): the prefill request is streamed with
  // "stream_kv", and the decode request goes out as soon as the prefill's
  // first event carries the lease's params, so the pull overlaps the prefill.
  bool stream_kv = false;
  // pd: where each request is prefilled (router/disagg_decider.h).
  DisaggOptions disagg;
  // Tokenize prompts (kv_aware routing, conditional disaggregation): with
  // the instances' tokenizer (`codec`) for text, as given for token ids.
  bool tokenize_prompts = false;
  int64_t max_model_len = 131072;
};

class RouterService : public std::enable_shared_from_this<RouterService> {
 public:
  // `index` (may be null) holds the instances' KV events; `codec` (may be
  // null: text prompts are then not tokenized) is the instances' tokenizer.
  RouterService(RouterServiceOptions options, InstancePool& pool, std::unique_ptr<RoutingPolicy> policy,
                UpstreamClients& clients, const KvIndex* index = nullptr, const PromptCodec* codec = nullptr);

  // The HttpHandler: runs on the exchange's executor.
  void handle(HttpRequest request, std::shared_ptr<HttpExchange> exchange);

  MetricsRegistry& metrics() { return metrics_; }
  int num_in_flight() const { return num_in_flight_.load(); }

  // Used by ProxyCall.
  InstancePtr pick(PoolRole role, const RouteKey& key, const Instance* exclude);
  // Healthy and still in the pool under its role (not moved by role control).
  bool in_rotation(const InstancePtr& inst) const;
  UpstreamClients& clients() { return clients_; }
  const RouterServiceOptions& options() const { return options_; }
  void count_request(const Instance& inst);
  void count_retry(PoolRole role);
  void count_upstream_error(const Instance& inst, const std::string& kind);
  void count_prefill_place(const DisaggDecision& decision);
  // The KV state of `url` for `prompt` (nothing synced without an index).
  KvView kv_view(const std::string& url, const PromptHashes& prompt) const;
  void call_started() { num_in_flight_.fetch_add(1); }
  void call_finished() { num_in_flight_.fetch_sub(1); }

 private:
  void route(HttpRequest request, const std::shared_ptr<HttpExchange>& exchange);
  void handle_health(const std::shared_ptr<HttpExchange>& exchange);
  void handle_models(const HttpRequest& request, const std::shared_ptr<HttpExchange>& exchange);
  void render_kv_metrics();
  void count_kv_pick(PoolRole role, const Instance& inst, const RouteNote& note);

  RouterServiceOptions options_;
  InstancePool& pool_;
  std::unique_ptr<RoutingPolicy> policy_;
  UpstreamClients& clients_;
  const KvIndex* index_;
  const PromptCodec* codec_;
  MetricsRegistry metrics_;
  std::atomic<int> num_in_flight_{0};
};

// An OpenAI-style error response.
HttpResponse router_error(int status, const std::string& message, const std::string& type);

}  // namespace baton::router
