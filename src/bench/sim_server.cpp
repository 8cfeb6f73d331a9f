#include "bench/sim_server.h"

#include <chrono>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/clock.h"
#include "common/json.h"
#include "http/http_server.h"

namespace baton::bench {

namespace asio = boost::asio;

struct SimServer::Job {
  std::shared_ptr<HttpExchange> ex;
  int64_t max_tokens = 16;
  int64_t prompt_tokens = 0;
  bool stream = true;
  bool include_usage = false;
  int64_t emitted = 0;
  TimePoint start;
  std::unique_ptr<asio::steady_timer> timer;
  std::string id;
};

namespace {

std::string chunk_json(const std::string& id, const std::string& model, std::string_view text, const char* finish) {
  return fmt::format(
      R"({{"id":"{}","object":"text_completion","model":"{}","choices":[{{"index":0,"text":"{}","finish_reason":{}}}]}})",
      id, model, text, finish);
}

}  // namespace

SimServer::SimServer(SimServerOptions options) : options_(std::move(options)) {}

SimServer::~SimServer() { stop(); }

Status SimServer::start() {
  HttpServerOptions ho;
  ho.host = options_.host;
  ho.port = options_.port;
  ho.num_io_threads = options_.num_io_threads;
  ho.limits.max_body_bytes = 64 << 20;
  http_ = std::make_unique<HttpServer>(ho, [this](HttpRequest req, std::shared_ptr<HttpExchange> ex) {
    if (req.method == "GET" && (req.path == "/health" || req.path == "/v1/models")) {
      HttpResponse r;
      r.body = req.path == "/health"
                   ? std::string("{\"status\":\"ok\"}")
                   : Json{{"object", "list"}, {"data", {{{"id", options_.model}, {"object", "model"}}}}}.dump();
      ex->reply(std::move(r));
      return;
    }
    if (req.method == "GET" && req.path == "/metrics") {
      HttpResponse r;
      r.content_type = "text/plain; version=0.0.4";
      r.body = fmt::format(
          "# HELP baton:prefix_cache_hits_total Prefix-cache hits, in prompt tokens.\n"
          "# TYPE baton:prefix_cache_hits_total counter\nbaton:prefix_cache_hits_total {}\n",
          prefix_cache_hits_.load());
      ex->reply(std::move(r));
      return;
    }
    if (req.method == "POST" && req.path == "/v1/completions") {
      on_completion(std::move(req.body), std::move(ex));
      return;
    }
    ex->reply({404, "application/json", R"({"error":{"message":"not found","type":"not_found"}})", {}});
  });
  return http_->start();
}

void SimServer::stop() {
  if (http_) {
    http_->stop();
    http_.reset();
  }
}

int SimServer::port() const { return http_ ? http_->port() : 0; }
std::string SimServer::url() const { return fmt::format("http://{}:{}", options_.host, port()); }

double SimServer::capacity_rps(int64_t max_tokens) const {
  double t = options_.first_token_delay_s + static_cast<double>(max_tokens - 1) * options_.per_token_delay_s;
  if (options_.num_slots == 0 || t <= 0) return std::numeric_limits<double>::infinity();
  return static_cast<double>(options_.num_slots) / t;
}

void SimServer::on_completion(std::string body, std::shared_ptr<HttpExchange> ex) {
  size_t n = num_requests_.fetch_add(1) + 1;
  auto bad = [&](const std::string& msg) {
    ex->reply(
        {400, "application/json", Json{{"error", {{"message", msg}, {"type", "invalid_request_error"}}}}.dump(), {}});
  };
  if (options_.fail_every_n > 0 && n % options_.fail_every_n == 0) {
    ex->reply({503, "application/json", R"({"error":{"message":"injected failure","type":"overloaded"}})", {}});
    return;
  }
  Json j = Json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("body is not a JSON object");
  auto job = std::make_shared<Job>();
  job->ex = ex;
  auto max_tokens = json_get<int64_t>(j, "max_tokens", 16);
  auto stream = json_get<bool>(j, "stream", false);
  if (!max_tokens.is_ok() || *max_tokens < 1) return bad("max_tokens must be an integer >= 1");
  if (!stream.is_ok()) return bad(stream.status().message());
  job->max_tokens = *max_tokens;
  job->stream = *stream;
  if (auto so = j.find("stream_options"); so != j.end() && so->is_object()) {
    job->include_usage = so->value("include_usage", false);
  }
  auto p = j.find("prompt");
  if (p == j.end()) return bad("missing field 'prompt'");
  if (p->is_array()) job->prompt_tokens = static_cast<int64_t>(p->size());
  else if (p->is_string()) job->prompt_tokens = static_cast<int64_t>(p->get_ref<const std::string&>().size() / 4 + 1);
  else return bad("prompt must be a string or a list of token ids");
  job->id = fmt::format("cmpl-sim-{}", n);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!prompts_seen_.insert(std::hash<std::string>{}(p->dump())).second)
      prefix_cache_hits_.fetch_add(job->prompt_tokens);
    if (options_.num_slots > 0 && active_ >= options_.num_slots) {
      queue_.push_back(job);
      return;
    }
    ++active_;
    max_active_ = std::max(max_active_, active_);
  }
  begin(std::move(job));
}

void SimServer::begin(std::shared_ptr<Job> job) {
  // Runs on any thread: move onto the connection's strand.
  asio::post(job->ex->executor(), [this, job] {
    job->start = SteadyClock::now();
    job->timer = std::make_unique<asio::steady_timer>(job->ex->executor());
    if (job->stream) job->ex->start_events();
    tick(job);
  });
}

void SimServer::tick(std::shared_ptr<Job> job) {
  if (job->ex->disconnected()) {  // the client went away: abort, as a real server does
    job->timer.reset();
    release_slot();
    return;
  }
  // Emit every token that is due (several when delays are zero).
  for (;;) {
    double due_s = options_.first_token_delay_s + static_cast<double>(job->emitted) * options_.per_token_delay_s;
    TimePoint due = job->start +
                    std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(due_s));
    if (due > SteadyClock::now()) {
      job->timer->expires_at(due);
      job->timer->async_wait([this, job](const boost::system::error_code& ec) {
        if (!ec) tick(job);
      });
      return;
    }
    ++job->emitted;
    bool last = job->emitted == job->max_tokens;
    if (job->stream && !job->ex->disconnected()) {
      job->ex->send_event(chunk_json(job->id, options_.model, " tok", last ? "\"length\"" : "null"));
    }
    if (last) break;
  }
  if (job->stream) {
    if (job->include_usage) {
      job->ex->send_event(fmt::format(
          R"({{"id":"{}","object":"text_completion","model":"{}","choices":[],"usage":{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}}}}})",
          job->id, options_.model, job->prompt_tokens, job->max_tokens, job->prompt_tokens + job->max_tokens));
    }
    job->ex->send_event("[DONE]");
    job->ex->end_events();
  } else {
    std::string text;
    for (int64_t i = 0; i < job->max_tokens; ++i) text += " tok";
    Json r{{"id", job->id},
           {"object", "text_completion"},
           {"model", options_.model},
           {"choices", {{{"index", 0}, {"text", text}, {"finish_reason", "length"}}}},
           {"usage",
            {{"prompt_tokens", job->prompt_tokens},
             {"completion_tokens", job->max_tokens},
             {"total_tokens", job->prompt_tokens + job->max_tokens}}}};
    job->ex->reply({200, "application/json", r.dump(), {}});
  }
  job->timer.reset();
  release_slot();
}

void SimServer::release_slot() {
  std::shared_ptr<Job> next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!queue_.empty()) {
      next = queue_.front();
      queue_.pop_front();
    } else if (active_ > 0) {
      --active_;
    }
  }
  if (next) begin(std::move(next));
}

}  // namespace baton::bench
