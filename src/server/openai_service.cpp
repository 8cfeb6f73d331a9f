#include "server/openai_service.h"

#include <chrono>
#include <random>

#include <fmt/format.h>
#include <boost/asio/post.hpp>

#include "common/clock.h"
#include "common/log.h"
#include "server/active_request.h"
#include "server/kv_event_streams.h"
#include "server/openai_request.h"
#include "server/openai_response.h"
#include "tokenizer/chat_template.h"

namespace baton {

namespace {

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

HttpResponse json_response(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = dump_json(body);
  return r;
}

HttpResponse error_response(const ApiError& e) {
  HttpResponse r = json_response(e.http_status, e.to_json());
  if (e.retry_after_s > 0) r.headers.emplace_back("Retry-After", std::to_string(e.retry_after_s));
  return r;
}

HttpResponse internal_error_response(const char* what) {
  ApiError e;
  e.http_status = 500;
  e.type = "internal_error";
  e.message = fmt::format("internal error while {}; the request was dropped", what);
  return error_response(e);
}

}  // namespace

OpenAiService::OpenAiService(EngineApi& engine, const PromptCodec& codec, OpenAiServiceOptions options)
    : engine_(engine), codec_(codec), options_(std::move(options)), metrics_(options_.served_model_name) {
  std::random_device rd;
  id_prefix_ = fmt::format("{:08x}", rd());
  if (options_.kv_events) kv_streams_ = std::make_unique<KvEventStreams>(options_.kv_events);
}

OpenAiService::~OpenAiService() = default;

void OpenAiService::set_draining() {
  draining_ = true;
  if (kv_streams_) kv_streams_->end_all();
}

std::string OpenAiService::next_request_id(ApiKind kind) {
  return fmt::format("{}-{}{:x}", kind == ApiKind::kChat ? "chatcmpl" : "cmpl", id_prefix_, next_id_++);
}

int OpenAiService::num_active() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(active_.size());
}

void OpenAiService::abort_all() {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, req] : active_) {
      for (int i = 0; i < req->num_choices(); ++i) ids.push_back(req->engine_request_id(i));
    }
  }
  for (const auto& id : ids) engine_.abort(id);
}

void OpenAiService::finished(const std::string& request_id) {
  std::shared_ptr<ActiveRequest> keep;  // destroyed after the lock is released
  std::lock_guard<std::mutex> lock(mu_);
  auto it = active_.find(request_id);
  if (it != active_.end()) {
    keep = std::move(it->second);
    active_.erase(it);
  }
}

void OpenAiService::handle(HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
  // The last guard: an unexpected exception becomes a 500 for this request
  // and a log line, never a dead process. A request already submitted when
  // it happened is aborted.
  std::string method = request.method, path = request.path;
  try {
    route(std::move(request), exchange);
  } catch (const std::exception& e) {
    recover(method, path, exchange, e.what());
  } catch (...) {
    recover(method, path, exchange, "unknown exception");
  }
}

void OpenAiService::recover(const std::string& method, const std::string& path,
                            const std::shared_ptr<HttpExchange>& exchange, const char* what) {
  BATON_LOG_ERROR("{} {}: unexpected error: {}", method, path, what);
  std::shared_ptr<ActiveRequest> submitted;  // destroyed after the lock is released
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = active_.begin(); it != active_.end(); ++it) {
      if (it->second->exchange() == exchange.get()) {
        submitted = std::move(it->second);
        active_.erase(it);
        break;
      }
    }
  }
  if (submitted) {
    for (int i = 0; i < submitted->num_choices(); ++i) engine_.abort(submitted->engine_request_id(i));
  }
  exchange->reply(internal_error_response("handling the request"));  // ends a started stream too
}

void OpenAiService::route(HttpRequest request, const std::shared_ptr<HttpExchange>& exchange) {
  const std::string& path = request.path;
  auto only = [&](const char* method) {
    if (request.method == method) return true;
    ApiError e;
    e.http_status = 405;
    e.message = fmt::format("method {} is not allowed on {} (use {})", request.method, path, method);
    HttpResponse r = error_response(e);
    r.headers.emplace_back("Allow", method);
    exchange->reply(std::move(r));
    return false;
  };
  bool is_v1 = path.rfind("/v1/", 0) == 0;
  if (is_v1 && !options_.api_key.empty() && request.header("authorization") != "Bearer " + options_.api_key) {
    ApiError e = api_error_from_status(permission_denied(
        "{}", request.header("authorization").empty() ? "missing API key (send 'Authorization: Bearer <key>')"
                                                      : "incorrect API key"));
    return exchange->reply(error_response(e));
  }
  if (path == "/health") {
    if (!only("GET")) return;
    HttpResponse r;
    r.content_type = "text/plain";
    if (Status h = engine_.health(); !h.is_ok()) {  // the engine stopped for good: out of rotation
      r.status = 503;
      r.body = "engine stopped: " + h.to_string() + "\n";
    }
    if (options_.role_admin) r.headers.emplace_back("X-Baton-Role", options_.role_admin->role_name());
    return exchange->reply(std::move(r));
  }
  if (path == "/metrics") {
    if (!only("GET")) return;
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_.render(engine_.stats());
    return exchange->reply(std::move(r));
  }
  if (path == "/v1/models") {
    if (!only("GET")) return;
    Json model = {{"id", options_.served_model_name},
                  {"object", "model"},
                  {"created", unix_seconds()},
                  {"owned_by", "baton"},
                  {"root", options_.model_path},
                  {"parent", nullptr},
                  {"max_model_len", engine_.max_model_len()},
                  // An extension (like vLLM's max_model_len): clients that send token ids,
                  // such as `baton bench`, draw them below this.
                  {"vocab_size", codec_.vocab_size()}};
    return exchange->reply(json_response(200, Json{{"object", "list"}, {"data", Json::array({model})}}));
  }
  if (path == "/v1/kv/events" && kv_streams_) {
    if (!only("GET")) return;
    return kv_streams_->serve(exchange);
  }
  if (path == "/v1/kv/release" && options_.kv_release) {
    if (!only("POST")) return;
    Result<Json> body = parse_json(request.body, "JSON body");
    Status st = body.status();
    if (body.is_ok()) {
      auto it = body->is_object() ? body->find("kv_transfer_params") : body->end();
      st = it == body->end() ? invalid_argument("the body needs 'kv_transfer_params' (an object)")
                             : options_.kv_release(*it);
    }
    if (!st.is_ok()) return exchange->reply(error_response(api_error_from_status(st)));
    return exchange->reply(json_response(200, Json{{"released", true}}));
  }
  if (path == "/v1/admin/role" && options_.role_admin) {
    if (request.method != "POST" && !only("GET")) return;
    return handle_role_admin(request, exchange);
  }
  if (path == "/v1/completions" || path == "/v1/chat/completions") {
    if (!only("POST")) return;
    return handle_generate(path == "/v1/completions" ? ApiKind::kCompletion : ApiKind::kChat, request, exchange);
  }
  ApiError e;
  e.http_status = 404;
  e.message = fmt::format("no route {} {}", request.method, path);
  e.code = "not_found";
  exchange->reply(error_response(e));
}

void OpenAiService::handle_role_admin(const HttpRequest& request, const std::shared_ptr<HttpExchange>& exchange) {
  if (request.method == "GET") return exchange->reply(json_response(200, options_.role_admin->status()));
  Result<Json> body = parse_json(request.body, "JSON body");
  Result<Json> started = body.is_ok() ? options_.role_admin->request_switch(*body) : Result<Json>(body.status());
  if (started.is_ok()) return exchange->reply(json_response(202, *started));
  ApiError e = api_error_from_status(started.status());
  if (started.status().code() == StatusCode::kFailedPrecondition) {
    e.http_status = 409;  // a switch is already in flight
    e.type = "conflict";
  }
  exchange->reply(error_response(e));
}

void OpenAiService::handle_generate(ApiKind kind, const HttpRequest& http_request,
                                    const std::shared_ptr<HttpExchange>& exchange) {
  if (draining_) {
    ApiError e = api_error_from_status(unavailable("the server is shutting down"));
    return exchange->reply(error_response(e));
  }
  Result<Json> body = parse_json(http_request.body, "JSON body");
  if (!body.is_ok()) return exchange->reply(error_response(bad_request(body.status().message())));
  ParseResult parsed = parse_openai_request(kind, *body);
  if (!parsed.request) return exchange->reply(error_response(parsed.error));
  OpenAiRequest& req = *parsed.request;
  if (req.chat.has_tools()) {
    // Once more, keeping key order: templates print the tools as sent.
    Result<OrderedJson> ordered = parse_ordered_json(http_request.body, "JSON body");
    if (ordered.is_ok() && ordered->contains("tools")) req.chat.tools_in_order = (*ordered)["tools"];
  }
  if (!req.ignored_fields.empty()) {
    BATON_LOG_WARN("ignoring unknown request fields: {}", fmt::join(req.ignored_fields, ", "));
  }
  if (!req.model.empty() && req.model != options_.served_model_name) {
    ApiError e;
    e.http_status = 404;
    e.message = fmt::format("The model `{}` does not exist (this server serves `{}`).", req.model,
                            options_.served_model_name);
    e.param = "model";
    e.code = "model_not_found";
    return exchange->reply(error_response(e));
  }
  if (auto err = prepare_prompt(&req, codec_, engine_.max_model_len(), options_.tool_call_format)) {
    return exchange->reply(error_response(*err));
  }
  if (options_.max_waiting_requests > 0 && engine_.stats().num_waiting >= options_.max_waiting_requests) {
    ApiError e = api_error_from_status(
        resource_exhausted("too many waiting requests ({}); retry later", options_.max_waiting_requests));
    return exchange->reply(error_response(e));
  }

  // A role that can change admits the requests it serves now; the ticket
  // lives as long as the request (a drain waits for it).
  std::shared_ptr<void> role_ticket;
  if (options_.role_admin) {
    Result<std::shared_ptr<void>> admitted = options_.role_admin->admit(req.gen.kv_transfer_params);
    if (!admitted.is_ok()) {
      // The header tells a router the refusal is the role's (it retries elsewhere).
      HttpResponse r = error_response(api_error_from_status(admitted.status()));
      r.headers.emplace_back("X-Baton-Role", options_.role_admin->role_name());
      return exchange->reply(std::move(r));
    }
    role_ticket = std::move(admitted).value();
  }
  ResponseHeader header{kind, next_request_id(kind), options_.served_model_name, unix_seconds()};
  req.gen.request_id = header.id;
  GenerationRequest gen = req.gen;
  ActiveRequest::Hooks hooks;
  hooks.on_finished = [this, role_ticket](const std::string& id) { finished(id); };
  hooks.abort = [this](const std::string& id) { engine_.abort(id); };
  hooks.next_tool_call_id = [this] { return fmt::format("chatcmpl-tool-{}{:x}", id_prefix_, next_id_++); };
  auto active = std::make_shared<ActiveRequest>(exchange, std::move(req), header, codec_, metrics_, std::move(hooks));
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_[header.id] = active;
  }
  auto executor = exchange->executor();
  std::weak_ptr<ActiveRequest> weak = active;
  // n choices: n engine requests on one prompt (the prefix cache shares its
  // blocks), each with its own seed when the request pinned one (as vLLM).
  std::vector<std::string> submitted;
  for (int i = 0; i < active->num_choices(); ++i) {
    GenerationRequest choice = gen;
    choice.request_id = active->engine_request_id(i);
    if (choice.sampling.seed) *choice.sampling.seed += static_cast<uint64_t>(i);
    Status st = engine_.submit(std::move(choice), [executor, weak, i](RequestOutput out) {
      boost::asio::post(executor, [weak, i, out = std::move(out)]() mutable {
        if (auto a = weak.lock()) a->on_output(i, std::move(out));
      });
    });
    if (!st.is_ok()) {
      for (const std::string& id : submitted) engine_.abort(id);
      finished(header.id);
      return exchange->reply(error_response(api_error_from_status(st)));
    }
    submitted.push_back(active->engine_request_id(i));
  }
  exchange->set_disconnect_handler([this, submitted] {
    BATON_LOG_DEBUG("client of {} went away: aborting", submitted.front());
    for (const std::string& id : submitted) engine_.abort(id);
  });
  active->start_stream();
}

}  // namespace baton
