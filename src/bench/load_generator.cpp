#include "bench/load_generator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <limits>
#include <mutex>
#include <numeric>
#include <thread>
#include <unordered_map>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bench/completion_protocol.h"
#include "common/clock.h"
#include "http/http_client.h"
#include "http/sse_parser.h"

namespace baton::bench {

namespace asio = boost::asio;

std::string error_kind_of(int http_status, const Status& status) {
  if (!status.is_ok()) {
    switch (status.code()) {
      case StatusCode::kDeadlineExceeded: return "timeout";
      case StatusCode::kAborted: return "cancelled";
      case StatusCode::kUnavailable: return "connection";
      default: return "client_error";
    }
  }
  if (http_status >= 500) return "http_5xx";
  if (http_status >= 400) return "http_4xx";
  return "http_other";
}

namespace {

struct Worker {
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  std::shared_ptr<http::HttpClient> client;
  asio::steady_timer timer{io};
  std::vector<size_t> schedule;  // turn-0 requests in arrival order
  size_t next = 0;
  // The body of schedule[next], built while waiting for its time (long
  // prompts cost a millisecond to serialize: not on the send path).
  size_t prepared_index = SIZE_MAX;
  std::string prepared_body;
  std::thread thread;
};

class Runner {
 public:
  Runner(const Workload& w, const LoadOptions& o) : w_(w), o_(o) {}

  Result<LoadResult> run();

 private:
  struct Exchange;

  double now_s() const { return std::chrono::duration<double>(SteadyClock::now() - start_).count(); }
  TimePoint at(double t_s) const {
    return start_ + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(t_s));
  }
  void arm(Worker& w);
  void on_timer(Worker& w);
  void release(Worker& w, size_t i);
  void send(Worker& w, size_t i, double ready_s);
  void finish(Worker& w, size_t i);
  Progress progress(double interval_s);
  StopCheck stop_check();
  void stop_all();
  // Early-stop bookkeeping (only with should_stop): measured requests in
  // flight and finished since the last check, under track_mu_. A first token
  // and an end are stamped under the lock, so a snapshot's elapsed time never
  // exceeds the request's final TTFT or E2E.
  struct Tracked {
    double send_s = 0;
    double first_token_s = -1;
  };
  bool tracking(size_t i) const { return track_ && !records_[i].warmup; }

  const Workload& w_;
  LoadOptions o_;
  CompletionBodyOptions body_;
  http::Request base_request_;
  std::vector<RequestRecord> records_;
  std::vector<std::unique_ptr<Worker>> workers_;
  TimePoint start_;
  size_t num_total_ = 0;
  std::atomic<size_t> sent_{0}, done_{0}, failed_{0}, max_in_flight_{0};
  std::mutex wait_mu_;
  size_t in_flight_ = 0;  // under wait_mu_
  std::deque<size_t> waiting_;
  // Multiturn text sessions: the conversation so far (prompt + real answer)
  // for request j, written when its previous turn completes (before j is sent).
  std::vector<std::string> history_;
  std::mutex ttft_mu_;
  std::vector<double> recent_ttft_;
  size_t ttft_next_ = 0;
  size_t last_sent_ = 0;
  bool track_ = false;
  size_t num_measured_ = 0;
  std::mutex track_mu_;
  std::unordered_map<size_t, Tracked> tracked_;
  std::vector<RequestRecord> finished_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> num_stop_acks_{0};
  std::vector<char> was_sent_;  // per request; read after the workers joined
};

struct Runner::Exchange {
  Exchange(Runner* r, Worker* w, size_t i)
      : runner(r), worker(w), index(i), sse([this](const http::SseEvent& e) { on_event(e); }) {}
  Runner* runner;
  Worker* worker;
  size_t index;
  http::SseParser sse;
  int status = 0;
  std::string error_body;
  std::string stream_error;
  bool got_done = false;
  bool keep_text = false;   // multiturn text: the answer joins the next turn's prompt
  std::string prompt_text;  // what was sent, when keep_text
  std::string answer;

  void on_event(const http::SseEvent& e) {
    auto& rec = runner->records_[index];
    double t = runner->now_s();
    ChunkInfo c = parse_completion_chunk(e.data);
    if (!c.error.empty()) {
      if (stream_error.empty()) stream_error = c.error;
      return;
    }
    if (c.done) got_done = true;
    if (c.content) {
      if (rec.first_token_s < 0) {
        if (runner->tracking(index)) {
          std::lock_guard<std::mutex> lock(runner->track_mu_);
          t = runner->now_s();
          runner->tracked_[index].first_token_s = t;
        }
        rec.first_token_s = t;
        std::lock_guard<std::mutex> lock(runner->ttft_mu_);
        if (runner->recent_ttft_.size() < 1000) {
          runner->recent_ttft_.push_back(t - rec.send_s);
        } else {
          runner->recent_ttft_[runner->ttft_next_++ % 1000] = t - rec.send_s;
        }
      }
      rec.chunk_s.push_back(t);
      if (keep_text) answer += c.text;
    }
    if (c.has_usage) {
      rec.usage_reported = true;
      rec.output_tokens = c.completion_tokens;
      if (c.prompt_tokens > 0) rec.prompt_tokens = c.prompt_tokens;
    }
  }

  void on_done(const Status& st) {
    auto& rec = runner->records_[index];
    if (runner->tracking(index)) {
      std::lock_guard<std::mutex> lock(runner->track_mu_);
      rec.end_s = runner->now_s();
      runner->tracked_.erase(index);
    } else {
      rec.end_s = runner->now_s();
    }
    sse.finish();
    if (!st.is_ok() && st.code() == StatusCode::kAborted && runner->stopping_.load()) {
      rec.cancelled = true;  // the bench's own early stop: no verdict on the server
      rec.error_kind = "cancelled_by_early_stop";
      rec.error = "cancelled: the run stopped early (its verdict was already certain)";
    } else if (!st.is_ok()) {
      rec.error_kind = error_kind_of(status, st);
      rec.error = st.message();
    } else if (status != 200) {
      rec.error_kind = error_kind_of(status, st);
      rec.error = fmt::format("HTTP {}: {:.300}", status, error_body);
    } else if (!stream_error.empty()) {
      rec.error_kind = "stream_error";
      rec.error = stream_error;
    } else if (rec.first_token_s < 0) {
      rec.error_kind = "empty_output";
      rec.error = "the stream ended without any generated text";
    } else {
      rec.ok = true;
      if (!rec.usage_reported) rec.output_tokens = static_cast<int64_t>(rec.chunk_s.size());
    }
    if (keep_text) {
      auto j = static_cast<size_t>(runner->w_.requests[index].next_turn);
      runner->history_[j] = std::move(prompt_text) + std::move(answer);
    }
    runner->finish(*worker, index);
  }
};

void Runner::arm(Worker& w) {
  if (w.next >= w.schedule.size()) return;
  if (w.prepared_index != w.schedule[w.next] &&
      !(body_.prompt_format == PromptFormat::kText && w_.requests[w.schedule[w.next]].session >= 0)) {
    w.prepared_index = w.schedule[w.next];
    w.prepared_body = make_completion_body(w_.requests[w.prepared_index], body_);
  }
  w.timer.expires_at(at(records_[w.schedule[w.next]].scheduled_s));
  w.timer.async_wait([this, &w](const boost::system::error_code& ec) {
    if (!ec) on_timer(w);
  });
}

void Runner::on_timer(Worker& w) {
  double slack_now = now_s() + 20e-6;
  while (w.next < w.schedule.size() && records_[w.schedule[w.next]].scheduled_s <= slack_now) {
    release(w, w.schedule[w.next++]);
  }
  arm(w);
}

void Runner::release(Worker& w, size_t i) {
  if (stopping_.load()) return;
  double ready = records_[i].scheduled_s;
  if (o_.max_concurrency > 0) {
    std::unique_lock<std::mutex> lock(wait_mu_);
    if (in_flight_ >= o_.max_concurrency || !waiting_.empty()) {
      waiting_.push_back(i);
      return;
    }
    ++in_flight_;
  }
  send(w, i, ready);
}

void Runner::send(Worker& w, size_t i, double ready_s) {
  auto& rec = records_[i];
  rec.ready_s = ready_s;
  const RequestSpec& spec = w_.requests[i];
  http::Request req = base_request_;
  auto ex = std::make_shared<Exchange>(this, &w, i);
  bool text_session = body_.prompt_format == PromptFormat::kText && spec.session >= 0;
  if (text_session) {
    // The conversation so far with the server's real answers, then the new user turn.
    std::string prompt = spec.turn > 0 ? history_[i] + " " : std::string();
    prompt += materialize_text({spec.prompt.back()});
    req.body = make_completion_body(spec, body_, &prompt);
    history_[i].clear();
    if (spec.next_turn >= 0) {
      ex->keep_text = true;
      ex->prompt_text = std::move(prompt);
    }
  } else if (w.prepared_index == i) {
    req.body = std::move(w.prepared_body);
    w.prepared_index = SIZE_MAX;
  } else {
    req.body = make_completion_body(spec, body_);
  }
  http::StreamHandlers h;
  h.on_headers = [ex](int status, const std::vector<http::Header>&) { ex->status = status; };
  h.on_data = [ex](std::string_view bytes) {
    if (ex->status == 200) {
      ex->sse.feed(bytes);
    } else if (ex->error_body.size() < 2048) {
      ex->error_body.append(bytes.substr(0, 2048 - ex->error_body.size()));
    }
  };
  h.on_done = [ex](const Status& st) { ex->on_done(st); };
  rec.send_s = now_s();
  was_sent_[i] = 1;
  if (tracking(i)) {
    std::lock_guard<std::mutex> lock(track_mu_);
    tracked_[i] = Tracked{rec.send_s, -1};
  }
  size_t now_in_flight = sent_.fetch_add(1) + 1 - done_.load();
  size_t prev = max_in_flight_.load();
  while (now_in_flight > prev && !max_in_flight_.compare_exchange_weak(prev, now_in_flight)) {
  }
  w.client->stream(std::move(req), std::move(h));
}

void Runner::finish(Worker& w, size_t i) {
  const auto& rec = records_[i];
  if (tracking(i)) {
    std::lock_guard<std::mutex> lock(track_mu_);
    finished_.push_back(rec);
  }
  if (!rec.ok && !rec.cancelled) failed_.fetch_add(1);
  done_.fetch_add(1);  // counted first, so that sent - done never overstates the in-flight count
  if (o_.max_concurrency > 0) {
    std::unique_lock<std::mutex> lock(wait_mu_);
    if (!waiting_.empty() && !stopping_.load()) {
      size_t j = waiting_.front();
      waiting_.pop_front();
      lock.unlock();
      send(w, j, now_s());
    } else {
      --in_flight_;
    }
  }
  int64_t next = w_.requests[i].next_turn;
  if (next >= 0) {
    auto j = static_cast<size_t>(next);
    records_[j].scheduled_s = rec.end_s + w_.requests[j].think_time_s;
    auto timer = std::make_shared<asio::steady_timer>(w.io, at(records_[j].scheduled_s));
    timer->async_wait([this, &w, j, timer](const boost::system::error_code& ec) {
      if (!ec) release(w, j);
    });
  }
}

Progress Runner::progress(double interval_s) {
  Progress p;
  p.elapsed_s = std::max(0.0, now_s());
  p.num_total = num_total_;
  p.num_sent = sent_.load();
  p.num_done = done_.load();
  p.num_failed = failed_.load();
  p.num_in_flight = p.num_sent - std::min(p.num_sent, p.num_done);
  p.send_rate = interval_s > 0 ? static_cast<double>(p.num_sent - last_sent_) / interval_s : 0;
  last_sent_ = p.num_sent;
  std::vector<double> ttft;
  {
    std::lock_guard<std::mutex> lock(ttft_mu_);
    ttft = recent_ttft_;
  }
  p.running_ttft_p50_s = percentile(std::move(ttft), 50);
  return p;
}

StopCheck Runner::stop_check() {
  StopCheck c;
  std::lock_guard<std::mutex> lock(track_mu_);
  c.num_measured = num_measured_;
  c.elapsed_s = now_s();
  c.finished.swap(finished_);
  c.in_flight.reserve(tracked_.size());
  for (const auto& [i, t] : tracked_) {
    c.in_flight.push_back({c.elapsed_s - t.send_s, t.first_token_s >= 0 ? t.first_token_s - t.send_s : -1});
  }
  return c;
}

// Nothing more is sent (release() and the concurrency queue check stopping_),
// then each worker, on its own thread (after any send it is making), drops its
// schedule and cancels its exchanges: their sockets close, the server sees the
// disconnect and aborts them.
void Runner::stop_all() {
  stopping_.store(true);
  for (auto& w : workers_) {
    Worker* wp = w.get();
    asio::post(wp->io, [this, wp] {
      wp->next = wp->schedule.size();
      wp->timer.cancel();
      wp->client->cancel_all();
      num_stop_acks_.fetch_add(1);
    });
  }
}

Result<LoadResult> Runner::run() {
  if (w_.requests.empty()) return invalid_argument("the workload has no requests");
  if (o_.num_threads < 1 || o_.num_threads > 64) return invalid_argument("threads must be in 1..64");
  BATON_ASSIGN_OR_RETURN(auto base, http::parse_url(o_.url));
  auto target = base.with_path(o_.endpoint);
  base_request_.method = "POST";
  base_request_.target = target.target;
  base_request_.timeout_s = o_.request_timeout_s;
  base_request_.headers.push_back({"Accept", "text/event-stream"});
  body_.model = o_.model;
  body_.prompt_format = o_.prompt_format;
  body_.vocab_size = o_.vocab_size;
  body_.extra = o_.extra_body;
  num_total_ = w_.requests.size();

  records_.resize(num_total_);
  history_.resize(num_total_);
  was_sent_.assign(num_total_, 0);
  track_ = static_cast<bool>(o_.should_stop);
  std::vector<size_t> firsts;
  for (size_t i = 0; i < num_total_; ++i) {
    const auto& spec = w_.requests[i];
    auto& rec = records_[i];
    rec.index = static_cast<int64_t>(i);
    rec.session = spec.session;
    rec.turn = spec.turn;
    rec.scheduled_s = spec.arrival_s;
    rec.prompt_tokens = spec.prompt_tokens;
    rec.expected_output_tokens = spec.output_tokens;
    if (spec.turn == 0) firsts.push_back(i);
  }
  std::stable_sort(firsts.begin(), firsts.end(),
                   [&](size_t a, size_t b) { return w_.requests[a].arrival_s < w_.requests[b].arrival_s; });
  LoadResult out;
  std::vector<bool> warm = warmup_flags(w_, o_.num_warmup, o_.warmup_s);
  size_t num_warm_firsts = 0;
  for (size_t i : firsts) num_warm_firsts += warm[i] ? 1 : 0;
  if (num_warm_firsts > firsts.size() / 2) {
    // A trial always measures something: the warm-up never takes more than half of it.
    warm = warmup_flags(w_, firsts.size() / 2, 0);
    out.warmup_note = fmt::format(
        "the warm-up (--warmup {}, --warmup-s {:g}) covered {} of the run's {} requests: it was shortened to the "
        "first {}, since a warm-up never takes more than half a run",
        o_.num_warmup, o_.warmup_s, num_warm_firsts, firsts.size(), firsts.size() / 2);
  }
  for (size_t i = 0; i < num_total_; ++i) records_[i].warmup = warm[i];

  for (const auto& r : records_) num_measured_ += r.warmup ? 0 : 1;
  for (int t = 0; t < o_.num_threads; ++t) {
    auto w = std::make_unique<Worker>();
    BATON_ASSIGN_OR_RETURN(w->client, http::HttpClient::create(w->io.get_executor(), base));
    workers_.push_back(std::move(w));
  }
  for (size_t k = 0; k < firsts.size(); ++k) workers_[k % workers_.size()]->schedule.push_back(firsts[k]);

  start_ = SteadyClock::now() +
           std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(o_.start_delay_s));
  for (auto& w : workers_) {
    arm(*w);
    Worker* wp = w.get();
    w->thread = std::thread([wp] { wp->io.run(); });
  }
  Stopwatch wall;
  double last = 0;
  while (done_.load() < num_total_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    double t = wall.elapsed_s();
    if ((o_.on_progress || o_.should_stop) && t - last >= o_.progress_interval_s) {
      if (o_.on_progress) o_.on_progress(progress(t - last));
      last = t;
      if (o_.should_stop) {
        if (auto why = o_.should_stop(stop_check())) {
          out.stopped_early = true;
          out.stop_reason = *why;
          break;
        }
      }
    }
  }
  if (out.stopped_early) {
    stop_all();
    // Every worker has stopped sending once it acknowledged; then the
    // cancelled exchanges finish (as "cancelled").
    while (num_stop_acks_.load() < workers_.size() || done_.load() < sent_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  if (o_.on_progress) o_.on_progress(progress(wall.elapsed_s() - last));
  for (auto& w : workers_) {
    w->guard.reset();
    w->client->cancel_all();  // closes idle keep-alive connections
    w->io.stop();
    w->thread.join();
    out.num_connections_opened += w->client->num_connections_opened();
  }
  out.wall_s = wall.elapsed_s();
  out.max_in_flight = max_in_flight_.load();
  std::vector<double> lag, ttft_from_arrival;
  for (size_t i = 0; i < num_total_; ++i) {
    const auto& r = records_[i];
    if (was_sent_[i]) lag.push_back(r.client_lag_s());
    if (r.ok && !r.warmup && r.first_token_s >= 0) ttft_from_arrival.push_back(r.first_token_s - r.scheduled_s);
  }
  auto d = summarize(std::move(lag));
  out.lag_p99_s = d.p99;
  out.lag_max_s = d.max;
  out.warning = client_lag_warning(d.p99, d.max, percentile(std::move(ttft_from_arrival), 50));
  out.fell_behind = !out.warning.empty();
  if (out.stopped_early) {
    for (size_t i = 0; i < num_total_; ++i) {
      if (was_sent_[i]) out.records.push_back(std::move(records_[i]));
    }
    out.num_not_sent = num_total_ - out.records.size();
  } else {
    out.records = std::move(records_);
  }
  return out;
}

}  // namespace

std::string client_lag_warning(double lag_p99_s, double lag_max_s, double ttft_from_arrival_p50_s) {
  if (!(lag_max_s > kLagNegligibleS)) return "";
  const bool have_ttft = ttft_from_arrival_p50_s > 0;
  if (have_ttft && lag_max_s <= kLagNegligibleFraction * ttft_from_arrival_p50_s) return "";
  return fmt::format(
      "the client sent late (its lag, send - due time: p99 {:.2f} ms, max {:.2f} ms): a percentile measured from "
      "arrival may read up to {:.2f} ms higher than the server made it{}, and the server saw a slightly lower, "
      "burstier load than asked (more --threads or a faster client host remove it)",
      lag_p99_s * 1e3, lag_max_s * 1e3, lag_max_s * 1e3,
      have_ttft ? fmt::format(" ({:.1f}% of TTFT p50 from arrival, {:.2f} ms)",
                              100 * lag_max_s / ttft_from_arrival_p50_s, ttft_from_arrival_p50_s * 1e3)
                : std::string());
}

Result<LoadResult> run_load(const Workload& workload, const LoadOptions& options) {
  Runner runner(workload, options);
  return runner.run();
}

}  // namespace baton::bench
