#include "router/router_service.h"

#include "router/proxy_call.h"

#include "common/log.h"
#include "server/openai_request.h"

#include <boost/asio/post.hpp>

namespace baton::router {

HttpResponse router_error(int status, const std::string& message, const std::string& type) {
  HttpResponse r;
  r.status = status;
  // dump_json: the message may quote a client's bytes (a path with invalid UTF-8).
  r.body = dump_json(Json{{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", status}}}});
  if (status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

RouterService::RouterService(RouterServiceOptions options, InstancePool& pool, std::unique_ptr<RoutingPolicy> policy,
                             UpstreamClients& clients, const KvIndex* index, const PromptCodec* codec)
    : options_(options), pool_(pool), policy_(std::move(policy)), clients_(clients), index_(index), codec_(codec) {}

bool RouterService::in_rotation(const InstancePtr& inst) const {
  return inst && inst->healthy.load() && pool_.find(inst->url, inst->role) == inst;
}

InstancePtr RouterService::pick(PoolRole role, const RouteKey& key, const Instance* exclude) {
  auto candidates = pool_.healthy(role);
  if (candidates.empty()) return nullptr;
  key.note = {};
  InstancePtr inst = policy_->pick(candidates, key, exclude);
  if (inst && key.note.consulted) count_kv_pick(role, *inst, key.note);
  return inst;
}

KvView RouterService::kv_view(const std::string& url, const PromptHashes& prompt) const {
  return index_ ? index_->view(url, prompt) : KvView{};
}

void RouterService::count_kv_pick(PoolRole role, const Instance& inst, const RouteNote& note) {
  // longest: the pick holds the longest cached prefix on offer; shorter: a
  // less loaded instance won over it; none: no candidate held any of it.
  const char* match = note.best_overlap_tokens == 0                     ? "none"
                      : note.overlap_tokens == note.best_overlap_tokens ? "longest"
                                                                        : "shorter";
  MetricLabels labels = {{"instance", inst.url}, {"role", pool_role_name(role)}};
  metrics_
      .counter("baton:router_kv_overlap_tokens_total", "Prompt tokens cached on the instance kv_aware picked", labels)
      .inc(note.overlap_tokens);
  labels.emplace_back("match", match);
  metrics_.counter("baton:router_kv_picks_total", "kv_aware picks, by how the pick's cached prefix compared", labels)
      .inc();
}

void RouterService::count_prefill_place(const DisaggDecision& d) {
  metrics_
      .counter("baton:router_pd_prefill_total", "PD requests by where they were prefilled (conditional disaggregation)",
               {{"place", d.local ? "local" : "remote"}, {"reason", d.reason}})
      .inc();
  if (d.local) {
    metrics_
        .counter("baton:router_pd_local_prefill_tokens_total", "Uncached prompt tokens prefilled on decode instances")
        .inc(d.uncached_tokens);
  }
}

void RouterService::render_kv_metrics() {
  if (!index_) return;
  for (const KvIndexEntry& e : index_->entries()) {
    MetricLabels labels = {{"instance", e.url}};
    metrics_.gauge("baton:router_kv_index_synced", "1 while the instance's KV event stream is in sync", labels)
        .set(e.synced ? 1 : 0);
    metrics_.gauge("baton:router_kv_index_blocks", "Cached blocks the router knows of per instance", labels)
        .set(static_cast<double>(e.num_blocks));
    metrics_.counter("baton:router_kv_snapshots_total", "KV snapshots applied (first syncs and resyncs)", labels)
        .set_total(static_cast<double>(e.num_snapshots));
    metrics_
        .counter("baton:router_kv_gaps_total", "KV event batches that skipped a number (each forces a resync)", labels)
        .set_total(static_cast<double>(e.num_gaps));
    metrics_.counter("baton:router_kv_batches_total", "KV event batches applied", labels)
        .set_total(static_cast<double>(e.num_batches));
  }
}

void RouterService::count_request(const Instance& inst) {
  metrics_
      .counter("baton:router_requests_total", "Requests sent to each instance",
               {{"instance", inst.url}, {"role", pool_role_name(inst.role)}})
      .inc();
}

void RouterService::count_retry(PoolRole role) {
  metrics_
      .counter("baton:router_retries_total", "Requests retried on another instance", {{"role", pool_role_name(role)}})
      .inc();
}

void RouterService::count_upstream_error(const Instance& inst, const std::string& kind) {
  inst.num_errors.fetch_add(1);
  metrics_
      .counter("baton:router_upstream_errors_total", "Failed exchanges with instances",
               {{"instance", inst.url}, {"kind", kind}})
      .inc();
}

void RouterService::handle(HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
  // The last guard: an unexpected exception becomes a 500 for this request
  // and a log line, never a dead proxy.
  std::string method = request.method, path = request.path;
  try {
    route(std::move(request), exchange);
  } catch (const std::exception& e) {
    BATON_LOG_ERROR("{} {}: unexpected error: {}", method, path, e.what());
    exchange->reply(router_error(500, "internal error while handling the request", "internal_error"));
  } catch (...) {
    BATON_LOG_ERROR("{} {}: unexpected error", method, path);
    exchange->reply(router_error(500, "internal error while handling the request", "internal_error"));
  }
}

void RouterService::route(HttpRequest request, const std::shared_ptr<HttpExchange>& exchange) {
  const std::string& path = request.path;
  if (path == "/health") return handle_health(exchange);
  if (path == "/metrics") {
    for (const auto& inst : pool_.all()) {
      MetricLabels labels = {{"instance", inst->url}, {"role", pool_role_name(inst->role)}};
      metrics_.gauge("baton:router_instance_healthy", "1 when the instance is in rotation", labels)
          .set(inst->healthy.load() ? 1 : 0);
      metrics_.gauge("baton:router_instance_in_flight", "Requests in flight per instance", labels)
          .set(inst->num_in_flight.load());
    }
    metrics_.gauge("baton:router_requests_in_flight", "Client requests in flight").set(num_in_flight());
    render_kv_metrics();
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics_.render();
    return exchange->reply(std::move(r));
  }
  if (path == "/v1/models") return handle_models(request, exchange);
  if (path != "/v1/completions" && path != "/v1/chat/completions") {
    return exchange->reply(router_error(404, "unknown route " + path, "not_found_error"));
  }
  if (request.method != "POST") {
    return exchange->reply(router_error(405, "use POST for " + path, "invalid_request_error"));
  }
  auto body = parse_json(request.body, "request body");
  if (!body.is_ok() || !body->is_object()) {
    return exchange->reply(
        router_error(400, body.is_ok() ? "the request body must be a JSON object" : body.status().message(),
                     "invalid_request_error"));
  }
  Json parsed = std::move(body).value();
  // Checked as an instance would (types, ranges, fields named): a request a
  // decode would refuse must not cost a prefill first.
  ParseResult checked = parse_openai_request(path == "/v1/completions" ? ApiKind::kCompletion : ApiKind::kChat, parsed);
  if (!checked.request) {
    HttpResponse r;
    r.status = checked.error.http_status;
    r.body = dump_json(checked.error.to_json());
    return exchange->reply(std::move(r));
  }
  PromptHashes prompt;
  if (options_.tokenize_prompts) {
    OpenAiRequest& req = *checked.request;
    // The instance's own tokenization (server/openai_request.h); a prompt
    // it cannot reproduce (no tokenizer here, tools without a parser) stays unknown.
    if (!req.prompt_text) {
      prompt = PromptHashes(std::move(req.prompt_ids));
    } else if (codec_ &&
               !prepare_prompt(&req, *codec_, static_cast<int>(options_.max_model_len), ToolCallFormat::kNone)) {
      prompt = PromptHashes(std::move(req.prompt_ids));
    }
  }
  checked = {};
  auto call = std::make_shared<ProxyCall>(shared_from_this(), std::move(request), std::move(parsed), exchange,
                                          std::move(prompt));
  call->start();
}

void RouterService::handle_health(const std::shared_ptr<HttpExchange>& exchange) {
  bool ok = options_.mode == RouterMode::kAgg
                ? !pool_.healthy(PoolRole::kReplica).empty()
                : !pool_.healthy(PoolRole::kPrefill).empty() && !pool_.healthy(PoolRole::kDecode).empty();
  if (!ok) return exchange->reply(router_error(503, "no healthy instance for some role", "service_unavailable"));
  HttpResponse r;
  r.body = "{}";
  exchange->reply(std::move(r));
}

void RouterService::handle_models(const HttpRequest& request, const std::shared_ptr<HttpExchange>& exchange) {
  InstancePtr inst = pick(options_.mode == RouterMode::kAgg ? PoolRole::kReplica : PoolRole::kDecode, {}, nullptr);
  if (!inst) return exchange->reply(router_error(503, "no healthy instance", "service_unavailable"));
  auto client = clients_.get(inst->url);
  if (!client.is_ok()) return exchange->reply(router_error(502, client.status().message(), "upstream_error"));
  http::Request req;
  req.method = "GET";
  req.target = "/v1/models";
  std::string auth = request.header("authorization");
  if (!auth.empty()) req.headers.push_back({"Authorization", auth});
  req.timeout_s = 30.0;
  auto executor = exchange->executor();
  (*client)->send(std::move(req), [exchange, executor](Result<http::Response> r) {
    boost::asio::post(executor, [exchange, r = std::move(r)] {
      if (!r.is_ok()) return exchange->reply(router_error(502, r.status().message(), "upstream_error"));
      HttpResponse out;
      out.status = r->status;
      out.body = r->body;
      exchange->reply(std::move(out));
    });
  });
}

}  // namespace baton::router
