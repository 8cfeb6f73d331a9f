#include "router/proxy_call.h"

#include <boost/asio/post.hpp>

#include "common/log.h"
#include "router/router_service.h"

namespace baton::router {

namespace asio = boost::asio;

ProxyCall::ProxyCall(std::shared_ptr<RouterService> service, HttpRequest request, Json body,
                     std::shared_ptr<HttpExchange> exchange, PromptHashes prompt_hashes)
    : service_(std::move(service)),
      request_(std::move(request)),
      body_(std::move(body)),
      exchange_(std::move(exchange)) {
  service_->call_started();
  // The prompt (or the chat messages) keys prefix-aware routing.
  const Json* prompt = nullptr;
  if (body_.contains("prompt")) prompt = &body_["prompt"];
  if (body_.contains("messages")) prompt = &body_["messages"];
  if (prompt) key_.prefix = prefix_key_of(prompt->is_string() ? prompt->get<std::string>() : dump_json(*prompt));
  key_.prompt = std::move(prompt_hashes);
  auto stream = body_.find("stream");
  streamed_ = stream != body_.end() && stream->is_boolean() && stream->get<bool>();
  // One copy of the body is held: the text where it is relayed as is (agg),
  // the parsed document where it is edited (pd).
  if (service_->options().mode == RouterMode::kAgg) {
    body_ = nullptr;
  } else {
    std::string().swap(request_.body);
  }
}

std::string ProxyCall::dump_edited(const std::function<void(Json&)>& edit) {
  // The prompt and messages (nearly all of the bytes) are lent to the copy,
  // not copied, and given back after serialising.
  static const char* const kLent[] = {"prompt", "messages"};
  Json copy = Json::object();
  for (auto it = body_.begin(); it != body_.end(); ++it) {
    if (it.key() != kLent[0] && it.key() != kLent[1]) copy[it.key()] = it.value();
  }
  for (const char* key : kLent) {
    if (auto it = body_.find(key); it != body_.end()) copy[key] = std::move(*it);
  }
  edit(copy);
  std::string out = dump_json(copy);
  for (const char* key : kLent) {
    if (auto it = copy.find(key); it != copy.end()) body_[key] = std::move(*it);
  }
  return out;
}

ProxyCall::~ProxyCall() { service_->call_finished(); }

void ProxyCall::start() {
  std::weak_ptr<ProxyCall> weak = weak_from_this();
  exchange_->set_disconnect_handler([weak] {
    if (auto self = weak.lock()) self->give_up("the client went away");
  });
  if (service_->options().mode == RouterMode::kAgg) {
    stage_ = Stage::kDecode;
    InstancePtr inst = service_->pick(PoolRole::kReplica, key_, nullptr);
    if (!inst) return reply_error(503, "no healthy replica", "service_unavailable");
    relay(inst, std::move(request_.body));
  } else {
    start_pd();
  }
}

void ProxyCall::start_pd() {
  const DisaggOptions& disagg = service_->options().disagg;
  // Always remote: the decode instance is picked once the prefill answered.
  if (disagg.mode == DisaggMode::kAlways) return start_prefill(nullptr, false);
  decode_ = service_->pick(PoolRole::kDecode, key_, nullptr);
  if (!decode_) return reply_error(503, "no healthy decode instance", "service_unavailable");
  InstancePtr prefill = service_->pick(PoolRole::kPrefill, key_, nullptr);
  const KvView dv = service_->kv_view(decode_->url, key_.prompt);
  const KvView pv = prefill ? service_->kv_view(prefill->url, key_.prompt) : KvView{};
  DisaggInputs in;
  in.prompt_known = key_.prompt.known();
  in.prompt_tokens = key_.prompt.num_tokens();
  in.decode_overlap_tokens = dv.overlap_blocks * dv.block_size;
  in.decode_synced = dv.synced;
  in.decode_load = dv.load;
  in.prefill_synced = pv.synced;
  in.prefill_load = pv.load;
  DisaggDecision d = decide_prefill_place(disagg, in);
  if (!prefill && !d.local) d = {true, "no_prefill", in.prompt_tokens - in.decode_overlap_tokens};
  service_->count_prefill_place(d);
  if (!d.local) return start_prefill(nullptr, false, std::move(prefill));
  // Local: the decode instance serves it as an agg instance would.
  stage_ = Stage::kDecode;
  relay(decode_, dump_edited([](Json&) {}));
}

std::vector<http::Header> ProxyCall::forwarded_headers() const {
  std::vector<http::Header> headers;
  std::string auth = request_.header("authorization");
  if (!auth.empty()) headers.push_back({"Authorization", auth});
  return headers;
}

void ProxyCall::start_prefill(const Instance* exclude, bool is_retry, InstancePtr chosen) {
  InstancePtr inst = chosen ? std::move(chosen) : service_->pick(PoolRole::kPrefill, key_, exclude);
  if (!inst) return reply_error(503, "no healthy prefill instance", "service_unavailable");
  auto client = service_->clients().get(inst->url);
  if (!client.is_ok()) return reply_error(502, client.status().message(), "upstream_error");

  in_flight_.emplace(inst);
  service_->count_request(*inst);
  http::Request req;
  req.target = request_.path;
  const bool stream_kv = service_->options().stream_kv;
  req.body = dump_edited([stream_kv](Json& prefill_body) {
    prefill_body["max_tokens"] = 1;
    if (prefill_body.contains("max_completion_tokens")) prefill_body["max_completion_tokens"] = 1;
    prefill_body["stream"] = stream_kv;
    prefill_body.erase("stream_options");
    prefill_body.erase("min_tokens");
    prefill_body["kv_transfer_params"] = Json{{"do_remote_decode", true}};
    if (stream_kv) prefill_body["kv_transfer_params"]["stream_kv"] = true;
  });
  req.headers = forwarded_headers();
  // Not streamed: the instance's first byte is its whole answer, so only
  // the request timeout bounds it.
  req.timeout_s = service_->options().request_timeout_s;

  auto self = shared_from_this();
  auto response = std::make_shared<http::Response>();
  auto executor = exchange_->executor();
  http::StreamHandlers h;
  h.on_headers = [response](int status, const std::vector<http::Header>& headers) {
    response->status = status;
    response->headers = headers;
  };
  if (!stream_kv) {
    h.on_data = [response](std::string_view bytes) { response->body.append(bytes); };
  } else {
    // Streamed KV: the first event with kv_transfer_params starts the decode;
    // the rest of a 200 answer is not needed (an error answer is kept whole).
    // The parser is this call's, fed on its executor (in order with the
    // answer's end) and replaced only by a retry, never during a feed.
    prefill_sse_ = std::make_unique<http::SseParser>([this, inst](const http::SseEvent& e) {
      if (e.data.find("\"kv_transfer_params\"") == std::string::npos) return;
      auto parsed = parse_json(e.data, "prefill event");
      if (!parsed.is_ok() || !parsed->is_object() || !(*parsed)["kv_transfer_params"].is_object()) return;
      on_prefill_params(inst, std::move((*parsed)["kv_transfer_params"]));
    });
    h.on_data = [self, response, executor](std::string_view bytes) {
      if (response->status != 200) {
        response->body.append(bytes);
        return;
      }
      asio::post(executor,
                 [self, data = std::string(bytes)] { self->guarded([&] { self->prefill_sse_->feed(data); }); });
    };
  }
  h.on_done = [self, inst, is_retry, response, executor](const Status& st) {
    asio::post(executor, [self, inst, is_retry, response, st] {
      self->guarded([&] {
        // Streamed KV, once the decode runs: the prefill's end changes
        // nothing here (a prefill that failed fails the decode's pull).
        if (self->granted_kv_params_.is_object()) return;
        self->on_prefill_done(inst, is_retry, st, std::move(*response));
      });
    });
  };
  if (stream_kv) {
    req.first_byte_timeout_s = service_->options().first_byte_timeout_s;
    req.idle_timeout_s = service_->options().idle_timeout_s;
    prefill_upstream_ = (*client)->stream(std::move(req), std::move(h));
  } else {
    upstream_ = (*client)->stream(std::move(req), std::move(h));
  }
}

void ProxyCall::on_prefill_params(const InstancePtr& inst, Json params) {
  if (granted_kv_params_.is_object()) return;  // only the first event's
  lease_holder_ = inst;
  lease_params_ = params;
  if (stage_ == Stage::kDone || exchange_->disconnected()) return release_prefill_lease();
  in_flight_.reset();
  start_decode(std::move(params));
}

void ProxyCall::on_prefill_done(const InstancePtr& inst, bool is_retry, Status status, http::Response response) {
  in_flight_.reset();
  if (status.is_ok() && response.status == 200) {
    auto parsed = parse_json(response.body, "prefill response");
    if (parsed.is_ok() && parsed->is_object() && parsed->contains("kv_transfer_params") &&
        (*parsed)["kv_transfer_params"].is_object()) {
      lease_holder_ = inst;
      lease_params_ = (*parsed)["kv_transfer_params"];
    }
  }
  if (stage_ == Stage::kDone || exchange_->disconnected()) return release_prefill_lease();
  if (!status.is_ok()) {
    service_->count_upstream_error(*inst, status.code() == StatusCode::kDeadlineExceeded ? "timeout" : "connect");
    if (status.code() == StatusCode::kUnavailable && response.status == 0 && !is_retry) {
      BATON_LOG_WARN("prefill {} failed ({}); retrying on another prefill instance", inst->url, status.message());
      inst->healthy.store(false);  // the health checker brings it back when it answers
      service_->count_retry(PoolRole::kPrefill);
      return start_prefill(inst.get(), true);
    }
    return reply_error(502, "prefill instance " + inst->url + ": " + status.message(), "upstream_error");
  }
  if (response.status == 503 && !response.header("x-baton-role").empty() && !is_retry) {
    // Its role is switching (or no longer prefill) and this router has not
    // seen it yet: another prefill instance takes the request.
    BATON_LOG_INFO("prefill {} refused the request during a role switch; retrying on another", inst->url);
    service_->count_retry(PoolRole::kPrefill);
    return start_prefill(inst.get(), true);
  }
  if (response.status != 200) {
    // The prefill instance refused the request (bad input, overload): pass its answer on.
    HttpResponse out;
    out.status = response.status;
    out.body = std::move(response.body);
    std::string retry_after = response.header("retry-after");
    if (!retry_after.empty()) out.headers.emplace_back("Retry-After", retry_after);
    exchange_->reply(std::move(out));
    return finish();
  }
  // The 200 answer was parsed above: lease_params_ holds its params, if any.
  const Json* params = lease_params_.is_object() ? &lease_params_ : nullptr;
  if (!params) {
    service_->count_upstream_error(*inst, "protocol");
    return reply_error(502, "prefill instance " + inst->url + " returned no kv_transfer_params", "upstream_error");
  }
  start_decode(*params);
}

void ProxyCall::start_decode(Json params) {
  granted_kv_params_ = std::move(params);
  stage_ = Stage::kDecode;
  // The decode chosen up front, unless it left the rotation meanwhile (a role switch drains it).
  InstancePtr decode = service_->in_rotation(decode_) ? decode_ : service_->pick(PoolRole::kDecode, key_, nullptr);
  if (!decode) {
    give_up("no healthy decode instance");
    return reply_error(503, "no healthy decode instance", "service_unavailable");
  }
  relay(decode, dump_edited([this](Json& decode_body) { decode_body["kv_transfer_params"] = granted_kv_params_; }));
}

void ProxyCall::give_up(const std::string& why) {
  if (stage_ == Stage::kDone) return;
  stage_ = Stage::kDone;
  BATON_LOG_DEBUG("{} {}: giving up ({})", request_.method, request_.path, why);
  // The instance working on it sees its connection close and aborts the request.
  upstream_.cancel();
  prefill_upstream_.cancel();
  // A prefill that granted blocks for a decode which will now never read
  // them frees them at once, not at lease expiry.
  release_prefill_lease();
}

void ProxyCall::relay(const InstancePtr& inst, std::string body) {
  auto client = service_->clients().get(inst->url);
  if (!client.is_ok()) return reply_error(502, client.status().message(), "upstream_error");
  in_flight_.emplace(inst);
  service_->count_request(*inst);
  http::Request req;
  req.method = request_.method;
  req.target = request_.path;
  req.body = std::move(body);
  req.headers = forwarded_headers();
  req.timeout_s = service_->options().request_timeout_s;
  if (streamed_) {
    // A streaming instance answers its headers at once and sends a byte at
    // least every few seconds (events or heartbeats): silence means it stopped.
    req.first_byte_timeout_s = service_->options().first_byte_timeout_s;
    req.idle_timeout_s = service_->options().idle_timeout_s;
  }

  auto self = shared_from_this();
  auto executor = exchange_->executor();
  http::StreamHandlers h;
  h.on_headers = [self, executor](int status, const std::vector<http::Header>& headers) {
    bool is_sse = false;
    for (const auto& hd : headers) {
      if (hd.name.size() == 12 && strncasecmp(hd.name.c_str(), "content-type", 12) == 0 &&
          hd.value.find("text/event-stream") != std::string::npos) {
        is_sse = true;
      }
    }
    asio::post(executor, [self, status, is_sse] {
      self->guarded([&] {
        self->upstream_status_ = status;
        if (self->stage_ == Stage::kDone || self->exchange_->disconnected()) return;
        if (status == 200 && is_sse) {
          self->relaying_events_ = true;
          self->exchange_->start_events();
          self->sse_ = std::make_unique<http::SseParser>(
              [raw = self.get()](const http::SseEvent& e) { raw->exchange_->send_event(e.data); });
        }
      });
    });
  };
  h.on_data = [self, executor](std::string_view bytes) {
    asio::post(executor, [self, data = std::string(bytes)] {
      self->guarded([&] {
        if (self->stage_ == Stage::kDone || self->exchange_->disconnected()) return;
        if (self->relaying_events_) {
          self->sse_->feed(data);
        } else {
          self->upstream_body_ += data;
        }
      });
    });
  };
  h.on_done = [self, inst, executor](const Status& st) {
    asio::post(executor, [self, inst, st] {
      self->guarded([&] {
        if (!st.is_ok()) {
          self->service_->count_upstream_error(*inst, st.code() == StatusCode::kAborted            ? "aborted"
                                                      : st.code() == StatusCode::kDeadlineExceeded ? "timeout"
                                                                                                   : "stream");
        }
        // A decode that answered 200 pulled the KV and said "done" itself.
        if (st.is_ok() && self->upstream_status_ == 200) self->lease_params_ = nullptr;
        self->release_prefill_lease();
        if (self->stage_ == Stage::kDone || self->exchange_->disconnected()) return self->finish();
        if (!st.is_ok()) self->give_up(st.message());
        if (self->relaying_events_) {
          self->sse_->finish();
          if (!st.is_ok()) {
            Json err = {{"error",
                         {{"message", "upstream " + inst->url + ": " + st.message()},
                          {"type", "upstream_error"},
                          {"param", nullptr},
                          {"code", 502}}}};
            self->exchange_->send_event(dump_json(err));
          }
          self->exchange_->end_events();
        } else if (!st.is_ok()) {
          return self->reply_error(502, "instance " + inst->url + ": " + st.message(), "upstream_error");
        } else {
          // A decode that refused (overload, a bad field): the prefill's grant goes unused.
          if (self->upstream_status_ != 200)
            self->give_up("the instance answered " + std::to_string(self->upstream_status_));
          HttpResponse out;
          out.status = self->upstream_status_;
          out.body = std::move(self->upstream_body_);
          self->exchange_->reply(std::move(out));
        }
        self->finish();
      });
    });
  };
  upstream_ = (*client)->stream(std::move(req), std::move(h));
}

void ProxyCall::guarded(const std::function<void()>& step) {
  try {
    step();
  } catch (const std::exception& e) {
    fail_internal(e.what());
  } catch (...) {
    fail_internal("unknown exception");
  }
}

void ProxyCall::fail_internal(const char* what) {
  BATON_LOG_ERROR("{} {}: unexpected error while relaying: {}", request_.method, request_.path, what);
  give_up(what);
  reply_error(500, "internal error while relaying the request", "internal_error");
}

void ProxyCall::reply_error(int status, const std::string& message, const std::string& type) {
  if (!exchange_->disconnected()) exchange_->reply(router_error(status, message, type));
  finish();
}

void ProxyCall::release_prefill_lease() {
  if (!lease_holder_ || !lease_params_.is_object()) return;
  const InstancePtr inst = std::move(lease_holder_);
  http::Request req;
  req.target = "/v1/kv/release";
  req.body = dump_json(Json{{"kv_transfer_params", std::move(lease_params_)}});
  req.headers = forwarded_headers();
  req.timeout_s = 10.0;
  lease_params_ = nullptr;
  auto client = service_->clients().get(inst->url);
  if (!client.is_ok()) return;
  (*client)->send(std::move(req), [url = inst->url](Result<http::Response> r) {
    if (!r.is_ok()) BATON_LOG_WARN("releasing a KV lease on {} failed: {}", url, r.status().message());
  });
}

void ProxyCall::finish() {
  stage_ = Stage::kDone;
  in_flight_.reset();
  sse_.reset();
  // Streamed KV: the prefill's answer (and its parser) is left to end by
  // itself: closing it would abort the prefill request mid-prompt.
}

}  // namespace baton::router
