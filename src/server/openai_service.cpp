#include "server/openai_service.h"

#include <chrono>
#include <random>

#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include "common/clock.h"
#include "common/log.h"
#include "server/openai_request.h"
#include "server/openai_response.h"

namespace baton {

namespace {

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

HttpResponse json_response(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return r;
}

HttpResponse error_response(const ApiError& e) {
  HttpResponse r = json_response(e.http_status, e.to_json());
  if (e.retry_after_s > 0) r.headers.emplace_back("Retry-After", std::to_string(e.retry_after_s));
  return r;
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace

// One submitted request: turns engine outputs into the response, on the
// exchange's executor.
class ActiveRequest {
 public:
  ActiveRequest(OpenAiService& service, std::shared_ptr<HttpExchange> exchange, OpenAiRequest request,
                ResponseHeader header)
      : service_(service),
        exchange_(std::move(exchange)),
        request_(std::move(request)),
        header_(std::move(header)),
        logprobs_(request_.kind, service.codec_),
        delta_writer_(header_, request_.include_usage) {
    timings_.arrival_s = monotonic_s();
  }

  void start_stream() {
    if (!request_.stream) return;
    exchange_->start_events();
    if (request_.kind == ApiKind::kChat) {
      exchange_->send_event(dump(chat_role_chunk(header_, request_.include_usage)));
    }
  }

  void on_output(RequestOutput out) {
    if (done_) return;
    double now = monotonic_s();
    if (!out.new_token_ids.empty()) {
      if (timings_.first_token_s == 0) timings_.first_token_s = now;
      if (out.new_token_times_s.size() == out.new_token_ids.size()) {
        timings_.token_times_s.insert(timings_.token_times_s.end(), out.new_token_times_s.begin(),
                                      out.new_token_times_s.end());
      } else {
        timings_.token_times_s.insert(timings_.token_times_s.end(), out.new_token_ids.size(), now);
      }
    }
    num_output_tokens_ = std::max(num_output_tokens_, out.num_output_tokens);
    if (out.num_output_tokens == 0) num_output_tokens_ += static_cast<int>(out.new_token_ids.size());
    if (out.num_prompt_tokens > 0) num_prompt_tokens_ = out.num_prompt_tokens;
    if (request_.want_logprobs && !out.new_logprobs.empty()) logprobs_.add(out.new_logprobs, text_.size());
    text_ += out.new_text;

    if (!out.finished) {
      if (request_.stream && (!out.new_token_ids.empty() || !out.new_text.empty())) {
        if (request_.want_logprobs) {
          exchange_->send_event(dump(
              stream_chunk(header_, out.new_text, logprobs_.take(), FinishReason::kNone, request_.include_usage)));
        } else {
          exchange_->send_event(delta_writer_.chunk(out.new_text));
        }
      }
      return;
    }
    finish(std::move(out), now);
  }

 private:
  void finish(RequestOutput out, double now) {
    done_ = true;
    FinishReason reason = out.finish_reason == FinishReason::kNone ? FinishReason::kStop : out.finish_reason;
    if (!out.error.empty()) {
      ApiError e;
      e.http_status = 500;
      e.type = "internal_error";
      e.message = "generation failed: " + out.error;
      if (request_.stream) {
        exchange_->send_event(dump(e.to_json()));
        exchange_->send_event("[DONE]");
        exchange_->end_events();
      } else {
        exchange_->reply(error_response(e));
      }
    } else if (request_.stream) {
      Json lp = request_.want_logprobs && !logprobs_.empty() ? logprobs_.take() : Json(nullptr);
      if (request_.kind == ApiKind::kChat && !out.new_text.empty()) {
        exchange_->send_event(
            dump(stream_chunk(header_, out.new_text, std::move(lp), FinishReason::kNone, request_.include_usage)));
        lp = nullptr;
        out.new_text.clear();
      }
      Json last = stream_chunk(header_, out.new_text, std::move(lp), reason, request_.include_usage);
      if (!out.kv_transfer_params.is_null()) last["kv_transfer_params"] = out.kv_transfer_params;
      exchange_->send_event(dump(last));
      if (request_.include_usage) {
        exchange_->send_event(dump(usage_chunk(header_, prompt_tokens(), num_output_tokens_)));
      }
      exchange_->send_event("[DONE]");
      exchange_->end_events();
    } else {
      Json lp = request_.want_logprobs ? logprobs_.take() : Json(nullptr);
      exchange_->reply(json_response(200, final_response(header_, text_, std::move(lp), reason, prompt_tokens(),
                                                         num_output_tokens_, out.kv_transfer_params)));
    }
    if (out.arrival_time_s > 0) {
      // Engine timings are on the same monotonic clock; prefer them.
      timings_.arrival_s = std::min(timings_.arrival_s, out.arrival_time_s);
      timings_.first_scheduled_s = out.first_scheduled_time_s;
      if (out.first_token_time_s > 0) timings_.first_token_s = out.first_token_time_s;
    }
    timings_.finished_s = out.finished_time_s > 0 ? out.finished_time_s : now;
    service_.metrics_.record_finished(out.error.empty() ? reason : FinishReason::kNone, num_output_tokens_, timings_);
    service_.finished(header_.id);  // may destroy this
  }

  int prompt_tokens() const {
    return num_prompt_tokens_ > 0 ? num_prompt_tokens_ : static_cast<int>(request_.gen.prompt_ids.size());
  }

  OpenAiService& service_;
  std::shared_ptr<HttpExchange> exchange_;
  OpenAiRequest request_;
  ResponseHeader header_;
  LogprobsBuilder logprobs_;
  DeltaChunkWriter delta_writer_;
  RequestTimings timings_;
  std::string text_;
  int num_output_tokens_ = 0;
  int num_prompt_tokens_ = 0;
  bool done_ = false;
};

OpenAiService::OpenAiService(EngineApi& engine, const PromptCodec& codec, OpenAiServiceOptions options)
    : engine_(engine), codec_(codec), options_(std::move(options)), metrics_(options_.served_model_name) {
  std::random_device rd;
  id_prefix_ = fmt::format("{:08x}", rd());
}

OpenAiService::~OpenAiService() = default;

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
    for (const auto& [id, req] : active_) ids.push_back(id);
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
    Json model = {{"id", options_.served_model_name}, {"object", "model"},         {"created", unix_seconds()},
                  {"owned_by", "baton"},              {"root", options_.model_path}, {"parent", nullptr},
                  {"max_model_len", engine_.max_model_len()},
                  // An extension (like vLLM's max_model_len): clients that send token ids,
                  // such as `baton bench`, draw them below this.
                  {"vocab_size", codec_.vocab_size()}};
    return exchange->reply(json_response(200, Json{{"object", "list"}, {"data", Json::array({model})}}));
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
  if (auto err = prepare_prompt(&req, codec_, engine_.max_model_len())) return exchange->reply(error_response(*err));
  if (options_.max_waiting_requests > 0 && engine_.stats().num_waiting >= options_.max_waiting_requests) {
    ApiError e = api_error_from_status(
        resource_exhausted("too many waiting requests ({}); retry later", options_.max_waiting_requests));
    return exchange->reply(error_response(e));
  }

  ResponseHeader header{kind, next_request_id(kind), options_.served_model_name, unix_seconds()};
  req.gen.request_id = header.id;
  GenerationRequest gen = req.gen;
  auto active = std::make_shared<ActiveRequest>(*this, exchange, std::move(req), header);
  {
    std::lock_guard<std::mutex> lock(mu_);
    active_[header.id] = active;
  }
  auto executor = exchange->executor();
  std::weak_ptr<ActiveRequest> weak = active;
  Status st = engine_.submit(std::move(gen), [executor, weak](RequestOutput out) {
    boost::asio::post(executor, [weak, out = std::move(out)]() mutable {
      if (auto a = weak.lock()) a->on_output(std::move(out));
    });
  });
  if (!st.is_ok()) {
    finished(header.id);
    return exchange->reply(error_response(api_error_from_status(st)));
  }
  exchange->set_disconnect_handler([this, id = header.id] {
    BATON_LOG_DEBUG("client of {} went away: aborting", id);
    engine_.abort(id);
  });
  active->start_stream();
}

}  // namespace baton
