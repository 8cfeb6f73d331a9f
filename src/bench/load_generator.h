// The open-loop load generator: sends a workload's requests at their
// scheduled times over HTTP (streamed /v1/completions), whatever the server
// does, and records per-request timings.
//
// Threads: `num_threads` I/O threads, each with its own io_context, HTTP
// client and keep-alive pool; turn-0 requests are dealt round-robin, and each
// thread fires its own arrivals from a timer (no cross-thread hand-off on the
// send path). A --max-concurrency cap is shared: a request that finds it
// full waits in one FIFO until a slot frees (its wait shows in scheduling
// delay, not in client lag). The calling thread reports progress.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bench/metrics.h"
#include "bench/slo_watch.h"
#include "bench/workload.h"
#include "common/json.h"

namespace baton::bench {

struct Progress {
  double elapsed_s = 0;
  size_t num_total = 0, num_sent = 0, num_done = 0, num_failed = 0, num_in_flight = 0;
  double send_rate = 0;           // requests/s sent over the last interval
  double running_ttft_p50_s = 0;  // over the last 1000 TTFTs (NaN before any)
};

// What an early-stop hook sees at each progress tick (measured requests only).
struct StopCheck {
  size_t num_measured = 0;  // measured requests of the whole run
  double elapsed_s = 0;
  std::vector<RequestRecord> finished;    // finished since the previous tick
  std::vector<InFlightSample> in_flight;  // sent, not finished, now
};

struct LoadOptions {
  std::string url = "http://127.0.0.1:8000";  // the server's base URL
  std::string endpoint = "/v1/completions";
  std::string model;
  PromptFormat prompt_format = PromptFormat::kTokenIds;
  int64_t vocab_size = 151936;
  size_t max_concurrency = 0;  // 0: no cap
  // The first N scheduled requests are excluded from results, and so are those
  // scheduled before warmup_s (a session: by its start); a warm-up that would
  // cover more than half the first turns is cut to the first half (a trial
  // always measures something; LoadResult::warmup_note says so).
  size_t num_warmup = 0;
  double warmup_s = 0;
  double request_timeout_s = 600;
  int num_threads = 1;
  Json extra_body = Json::object();
  double start_delay_s = 0.05;  // t = 0 of the schedule is this long after run() starts
  double progress_interval_s = 0.5;
  std::function<void(const Progress&)> on_progress;  // on the calling thread
  // Early stop, on the calling thread every progress tick: a returned reason
  // stops the run at once: nothing more is sent, the requests in flight are
  // cancelled (their connections closed, so the server aborts them; their
  // records are `cancelled`, not failed), and the result keeps only the
  // requests that were sent.
  std::function<std::optional<std::string>(const StopCheck&)> should_stop;
};

struct LoadResult {
  std::vector<RequestRecord> records;  // in workload order (after an early stop: the sent ones)
  double wall_s = 0;
  size_t max_in_flight = 0;
  size_t num_connections_opened = 0;
  // The client's own lag (send - ready): when it could move a reported
  // percentile, `warning` says by how much (client_lag_warning).
  double lag_p99_s = 0, lag_max_s = 0;
  bool fell_behind = false;  // the warning is set
  std::string warning;
  // The warm-up was shortened (it would have covered more than half the run): why.
  std::string warmup_note;
  bool stopped_early = false;  // should_stop ended the run
  std::string stop_reason;
  size_t num_not_sent = 0;  // requests never sent (not in `records`)
};

// The client's lag delays a request's send past its due time; every latency
// measured from arrival includes it, so no such percentile moves by more than
// the largest lag. It is negligible (no warning) at or below 1 ms, or at or
// below 1% of the run's TTFT p50 from arrival, the smallest percentile it
// could move; otherwise the warning gives the bound. "" when negligible.
inline constexpr double kLagNegligibleS = 0.001;
inline constexpr double kLagNegligibleFraction = 0.01;
std::string client_lag_warning(double lag_p99_s, double lag_max_s, double ttft_from_arrival_p50_s);

Result<LoadResult> run_load(const Workload& workload, const LoadOptions& options);

// Classifies a failed exchange for "errors by kind": http_4xx, http_5xx,
// timeout, connection, stream_error, short_output, cancelled.
std::string error_kind_of(int http_status, const Status& status);

}  // namespace baton::bench
