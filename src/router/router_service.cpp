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
                             UpstreamClients& clients)
    : options_(options), pool_(pool), policy_(std::move(policy)), clients_(clients) {}

InstancePtr RouterService::pick(PoolRole role, const RouteKey& key, const Instance* exclude) {
  auto candidates = pool_.healthy(role);
  if (candidates.empty()) return nullptr;
  return policy_->pick(candidates, key, exclude);
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
  checked = {};
  auto call = std::make_shared<ProxyCall>(shared_from_this(), std::move(request), std::move(parsed), exchange);
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
