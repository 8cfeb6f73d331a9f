// Benchmark metrics, defined once (metric_definitions() prints them with the
// results):
//   TTFT  = time of the first content-bearing chunk - send time
//   TPOT  = (E2E - TTFT) / (output tokens - 1), for requests with >= 2 tokens
//   ITL   = time between consecutive content-bearing chunks (one per gap)
//   E2E   = time of the last byte - send time
//   *_from_arrival: the same measured from the scheduled arrival instead of
//   the send (they include the client's own scheduling delay and any wait for
//   a --max-concurrency slot).
//   scheduling delay = send - scheduled arrival
//   output tokens: the server's `usage.completion_tokens` (chunk count when
//   the server sends no usage, flagged in the record)
// Percentiles use linear interpolation between closest ranks (numpy's
// default): p-th of sorted x[0..n-1] = x[lo] + (x[hi]-x[lo]) * frac, with
// rank = p/100 * (n-1), lo = floor(rank), hi = ceil(rank), frac = rank - lo.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/json.h"

namespace baton::bench {

// One request's measurements. Times are seconds since the run's start.
struct RequestRecord {
  int64_t index = 0;     // position in the schedule
  bool warmup = false;   // excluded from results
  int64_t session = -1;  // multiturn session (-1: none)
  int turn = 0;
  double scheduled_s = 0;       // scheduled arrival
  double ready_s = 0;           // when a concurrency slot was free (= scheduled without a cap)
  double send_s = 0;            // when the client started the request
  double first_token_s = -1;    // first content-bearing chunk (-1: none)
  double end_s = -1;            // response complete or failed
  std::vector<double> chunk_s;  // arrival of each content-bearing chunk
  int64_t prompt_tokens = 0;    // as planned (the server's count when usage reports it)
  int64_t expected_output_tokens = 0;
  int64_t output_tokens = 0;
  bool usage_reported = false;
  bool ok = false;
  // Cancelled by the bench itself (an early stop): neither ok nor failed, and
  // left out of every latency and of the SLO (it says nothing of the server).
  bool cancelled = false;
  std::string error_kind;   // "" when ok: http_4xx, http_5xx, connect, timeout, stream, ...
  std::string error;        // message
  std::string output_text;  // kept only for multiturn text prompts

  double ttft_s() const { return first_token_s - send_s; }
  double e2e_s() const { return end_s - send_s; }
  double scheduling_delay_s() const { return send_s - scheduled_s; }
  double client_lag_s() const { return send_s - ready_s; }
  // Defined only for output_tokens >= 2.
  double tpot_s() const { return (e2e_s() - ttft_s()) / static_cast<double>(output_tokens - 1); }
  std::vector<double> itl_s() const;
};

// Linear-interpolation percentile (numpy default); p in [0, 100]. Empty -> NaN.
double percentile(std::vector<double> values, double p);
double percentile_sorted(const std::vector<double>& sorted, double p);

struct Distribution {
  size_t count = 0;
  double mean = 0, stddev = 0, min = 0, max = 0;
  double p50 = 0, p90 = 0, p95 = 0, p99 = 0;  // median == p50
  // Percentile by name: "mean", "median", "p50", "p90", "p95", "p99", "min", "max",
  // or any "pNN[.N]" (needs the samples: see summarize()).
  std::vector<double> sorted;  // the samples, ascending
  Result<double> statistic(const std::string& name) const;
  Json to_json(double scale = 1.0) const;  // values multiplied by scale (s -> ms)
};

Distribution summarize(std::vector<double> values);

// Aggregate results of one run (warm-up excluded). num_requests = num_ok +
// num_failed: the measured requests that ran to an answer or an error; those
// the bench cancelled itself (early stop) are num_cancelled, apart.
struct RunMetrics {
  double duration_s = 0;  // first send .. last completion of measured requests
  size_t num_requests = 0, num_ok = 0, num_failed = 0, num_cancelled = 0;
  std::map<std::string, size_t> errors_by_kind;
  int64_t total_input_tokens = 0, total_output_tokens = 0;
  size_t num_without_usage = 0;
  double request_throughput = 0;  // ok requests / duration
  double output_token_throughput = 0;
  double total_token_throughput = 0;
  // Measured requests sent (cancelled ones too) - 1 / span of their scheduled
  // arrivals; 0 (JSON null) when there are under two arrivals to span.
  double offered_rate = 0;
  Distribution ttft_s, tpot_s, itl_s, e2e_s, ttft_from_arrival_s, e2e_from_arrival_s;
  Distribution scheduling_delay_s, client_lag_s;
  Json to_json() const;
};

RunMetrics compute_metrics(const std::vector<RequestRecord>& records);

// Human-readable definitions of every metric above.
std::string metric_definitions();

}  // namespace baton::bench
