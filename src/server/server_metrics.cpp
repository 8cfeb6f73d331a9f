#include "server/server_metrics.h"

#include <algorithm>

namespace baton {
namespace {

const std::vector<double> kTtftBuckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
                                          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
const std::vector<double> kTokenBuckets = {0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1,  0.15, 0.2,  0.3, 0.4,
                                           0.5,   0.75,  1.0,  2.5,   5.0,  7.5,   10.0, 20.0, 40.0, 80.0};
const std::vector<double> kRequestBuckets = {0.01, 0.05, 0.1,   0.3,   0.5,   0.8,   1.0,    1.5,
                                             2.0,  2.5,  5.0,   10.0,  15.0,  20.0,  30.0,   40.0,
                                             50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

const char* reason_label(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
    case FinishReason::kNone: break;
  }
  return "error";
}

}  // namespace

ServerMetrics::ServerMetrics(std::string model_name) : labels_{{"model_name", std::move(model_name)}} {
  auto& r = registry_;
  ttft_ = &r.histogram("baton:time_to_first_token_seconds", "Histogram of time to first token in seconds.",
                       kTtftBuckets, labels_);
  tpot_ = &r.histogram("baton:time_per_output_token_seconds",
                       "Histogram of time per output token in seconds (decode time / (output tokens - 1)).",
                       kTokenBuckets, labels_);
  itl_ = &r.histogram("baton:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.",
                      kTokenBuckets, labels_);
  e2e_ = &r.histogram("baton:e2e_request_latency_seconds", "Histogram of end to end request latency in seconds.",
                      kRequestBuckets, labels_);
  queue_ = &r.histogram("baton:request_queue_time_seconds",
                        "Histogram of time spent waiting before first scheduled, in seconds.", kRequestBuckets,
                        labels_);
  prefill_ = &r.histogram("baton:request_prefill_time_seconds",
                          "Histogram of time from first scheduled to first token, in seconds.", kRequestBuckets,
                          labels_);
  decode_ = &r.histogram("baton:request_decode_time_seconds",
                         "Histogram of time from first token to finish, in seconds.", kRequestBuckets, labels_);
  // Create the success counters so that they render as 0 before any request.
  for (FinishReason fr : {FinishReason::kStop, FinishReason::kLength, FinishReason::kAbort}) {
    MetricLabels l = labels_;
    l.emplace_back("finished_reason", reason_label(fr));
    r.counter("baton:request_success_total", "Count of finished requests by finish reason.", l);
  }
  render(EngineStats{});
}

void ServerMetrics::record_finished(FinishReason reason, int num_output_tokens, const RequestTimings& t) {
  MetricLabels l = labels_;
  l.emplace_back("finished_reason", reason_label(reason));
  registry_.counter("baton:request_success_total", "Count of finished requests by finish reason.", l).inc();
  if (t.finished_s > t.arrival_s) e2e_->observe(t.finished_s - t.arrival_s);
  if (t.first_scheduled_s > 0) {
    queue_->observe(std::max(0.0, t.first_scheduled_s - t.arrival_s));
    if (t.first_token_s > 0) prefill_->observe(std::max(0.0, t.first_token_s - t.first_scheduled_s));
  }
  if (t.first_token_s > 0) {
    ttft_->observe(std::max(0.0, t.first_token_s - t.arrival_s));
    double decode_s = std::max(0.0, t.finished_s - t.first_token_s);
    decode_->observe(decode_s);
    if (num_output_tokens > 1) tpot_->observe(decode_s / (num_output_tokens - 1));
  }
  for (size_t i = 1; i < t.token_times_s.size(); ++i) {
    itl_->observe(std::max(0.0, t.token_times_s[i] - t.token_times_s[i - 1]));
  }
}

std::string ServerMetrics::render(const EngineStats& s) {
  auto& r = registry_;
  r.gauge("baton:num_requests_running", "Number of requests in model execution batches.", labels_).set(s.num_running);
  r.gauge("baton:num_requests_waiting", "Number of requests waiting to be processed.", labels_).set(s.num_waiting);
  r.gauge("baton:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", labels_).set(s.kv_usage);
  r.gauge("baton:num_kv_blocks_total", "Number of KV-cache blocks.", labels_).set(s.num_kv_blocks_total);
  r.gauge("baton:num_kv_blocks_free", "Number of free KV-cache blocks (cached prefixes included).", labels_)
      .set(s.num_kv_blocks_free);
  r.counter("baton:prefix_cache_queries_total", "Prefix-cache queries, in prompt tokens.", labels_)
      .set_total(static_cast<double>(s.prefix_cache_queries));
  r.counter("baton:prefix_cache_hits_total", "Prefix-cache hits, in prompt tokens.", labels_)
      .set_total(static_cast<double>(s.prefix_cache_hits));
  r.counter("baton:num_preemptions_total", "Cumulative number of preemptions.", labels_)
      .set_total(static_cast<double>(s.num_preemptions));
  r.counter("baton:prompt_tokens_total", "Number of prefill tokens processed.", labels_)
      .set_total(static_cast<double>(s.prompt_tokens_total));
  r.counter("baton:generation_tokens_total", "Number of generation tokens processed.", labels_)
      .set_total(static_cast<double>(s.generation_tokens_total));
  return r.render();
}

}  // namespace baton
