// One client request going through the router: agg (one upstream exchange)
// or pd (prefill, then decode). Every step runs on the client exchange's
// executor; upstream callbacks are posted there.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/json.h"
#include "http/http_client.h"
#include "http/http_exchange.h"
#include "http/sse_parser.h"
#include "router/instance_pool.h"
#include "router/routing_policy.h"

namespace baton::router {

class RouterService;

class ProxyCall : public std::enable_shared_from_this<ProxyCall> {
 public:
  // `prompt`: the prompt's token ids when the router could tokenize it.
  ProxyCall(std::shared_ptr<RouterService> service, HttpRequest request, Json body,
            std::shared_ptr<HttpExchange> exchange, PromptHashes prompt);
  ~ProxyCall();

  void start();

 private:
  enum class Stage { kPrefill, kDecode, kDone };

  // pd: picks the decode instance, then prefills remotely (start_prefill)
  // or lets the decode instance prefill (conditional disaggregation).
  void start_pd();
  // `chosen` (may be null: picked here) prefills the request.
  void start_prefill(const Instance* exclude, bool is_retry, InstancePtr chosen = nullptr);
  void on_prefill_done(const InstancePtr& inst, bool is_retry, Status status, http::Response response);
  // Streamed KV: the prefill's first event carried its lease's params; the
  // decode request goes out now, while the prompt still computes.
  void on_prefill_params(const InstancePtr& inst, Json params);
  // Sends the request with the prefill's granted params to a decode instance.
  void start_decode(Json params);
  // Sends `body` to `inst` and relays its answer (SSE or whole) to the client.
  void relay(const InstancePtr& inst, std::string body);
  void reply_error(int status, const std::string& message, const std::string& type);
  // Where the router gives up on the request (the client went away, an
  // instance failed or stopped answering, no decode instance is left):
  // cancels the upstream exchange, so that its instance aborts the request.
  void give_up(const std::string& why);
  // Runs one step of the call; an unexpected exception ends this call alone
  // (a 500 or an error event for the client, the upstream cancelled).
  void guarded(const std::function<void()>& step);
  void fail_internal(const char* what);
  // body_ serialised with `edit` applied to a copy (whose prompt/messages are lent, not copied).
  std::string dump_edited(const std::function<void(Json&)>& edit);
  void finish();
  std::vector<http::Header> forwarded_headers() const;
  // The router gives up on a PD request after its prefill answered (no
  // decode instance, the decode refused or failed, the client left): the
  // prefill frees that KV lease now (POST /v1/kv/release), not at expiry.
  void release_prefill_lease();

  std::shared_ptr<RouterService> service_;
  HttpRequest request_;
  Json body_;  // pd: the parsed request (agg relays request_.body as is)
  bool streamed_ = false;
  Json granted_kv_params_;  // pd: what the prefill granted, once it has
  std::shared_ptr<HttpExchange> exchange_;
  RouteKey key_;
  InstancePtr decode_;  // pd: the decode instance picked up front (re-picked if it left the rotation)
  Stage stage_ = Stage::kPrefill;
  http::StreamHandle upstream_;
  http::StreamHandle prefill_upstream_;  // streamed KV: the prefill's answer, open while the decode runs
  std::unique_ptr<http::SseParser> prefill_sse_;
  std::optional<InFlightGuard> in_flight_;
  // Relay state.
  bool relaying_events_ = false;
  int upstream_status_ = 0;
  std::string upstream_body_;
  std::unique_ptr<http::SseParser> sse_;
  // PD: the prefill that holds this request's KV lease, and its params.
  InstancePtr lease_holder_;
  Json lease_params_;
};

}  // namespace baton::router
