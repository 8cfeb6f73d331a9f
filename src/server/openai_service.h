// The OpenAI-compatible API over an EngineApi: routes, authentication,
// request validation, submission, streaming of outputs, disconnect aborts,
// metrics. HTTP-agnostic: it answers through HttpExchange.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "engine/async_engine_api.h"
#include "http/http_exchange.h"
#include "kv/kv_event_publisher.h"
#include "server/openai_request.h"
#include "server/prompt_codec.h"
#include "server/role_admin.h"
#include "server/server_metrics.h"
#include "server/tool_call_parser.h"

namespace baton {

struct OpenAiServiceOptions {
  std::string served_model_name = "baton";
  std::string model_path;        // reported as the model's "root"
  std::string api_key;           // "" = no authentication
  int max_waiting_requests = 0;  // 0 = only the engine's own limit
  // How tool calls are read out of chat outputs (--tool-call-parser); kNone:
  // requests with tools are refused unless tool_choice is "none".
  ToolCallFormat tool_call_format = ToolCallFormat::kNone;
  // PD prefill: POST /v1/kv/release {kv_transfer_params} frees that lease at
  // once (the router gave up on the request). Unset: no such route.
  std::function<Status(const Json& kv_transfer_params)> kv_release;
  // The engine's KV events and load: GET /v1/kv/events streams them
  // (server/kv_event_streams.h). Unset: no such route.
  std::shared_ptr<KvEventPublisher> kv_events;
  // An instance whose role can change (server/role_admin.h): GET/POST
  // /v1/admin/role, the role in /health's X-Baton-Role header, and each
  // generation request admitted by the role. Unset: none of these.
  std::shared_ptr<RoleAdmin> role_admin;
};

class ActiveRequest;
class KvEventStreams;

class OpenAiService {
 public:
  OpenAiService(EngineApi& engine, const PromptCodec& codec, OpenAiServiceOptions options);
  ~OpenAiService();

  // The HttpHandler: runs on the exchange's executor.
  void handle(HttpRequest request, std::shared_ptr<HttpExchange> exchange);

  // Shutdown: refuse new generation requests (503), then abort the live ones.
  // Also ends the KV event streams (GET /v1/kv/events).
  void set_draining();
  void abort_all();
  int num_active() const;

  ServerMetrics& metrics() { return metrics_; }

 private:
  friend class ActiveRequest;
  void route(HttpRequest request, const std::shared_ptr<HttpExchange>& exchange);
  void recover(const std::string& method, const std::string& path, const std::shared_ptr<HttpExchange>& exchange,
               const char* what);
  void handle_role_admin(const HttpRequest& request, const std::shared_ptr<HttpExchange>& exchange);
  void handle_generate(ApiKind kind, const HttpRequest& request, const std::shared_ptr<HttpExchange>& exchange);
  void finished(const std::string& request_id);
  std::string next_request_id(ApiKind kind);

  EngineApi& engine_;
  const PromptCodec& codec_;
  OpenAiServiceOptions options_;
  ServerMetrics metrics_;
  std::atomic<bool> draining_{false};
  std::atomic<uint64_t> next_id_{0};
  std::string id_prefix_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<ActiveRequest>> active_;
  std::unique_ptr<KvEventStreams> kv_streams_;  // with options_.kv_events
};

}  // namespace baton
