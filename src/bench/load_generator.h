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
  size_t num_warmup = 0;       // the first N scheduled requests are excluded from results
  double warmup_s = 0;         // so are those scheduled before this time (a session: by its start)
  double request_timeout_s = 600;
  int num_threads = 1;
  Json extra_body = Json::object();
  double start_delay_s = 0.05;  // t = 0 of the schedule is this long after run() starts
  double progress_interval_s = 0.5;
  std::function<void(const Progress&)> on_progress;  // on the calling thread
  // Early stop, on the calling thread every progress tick: a returned reason
  // stops the run at once: nothing more is sent, the requests in flight are
  // cancelled (their connections closed, so the server aborts them), and the
  // result keeps only the requests that were sent.
  std::function<std::optional<std::string>(const StopCheck&)> should_stop;
};

struct LoadResult {
  std::vector<RequestRecord> records;  // in workload order (after an early stop: the sent ones)
  double wall_s = 0;
  size_t max_in_flight = 0;
  size_t num_connections_opened = 0;
  // The client's own lag (send - ready): a client that falls behind says so.
  double lag_p99_s = 0, lag_max_s = 0;
  bool fell_behind = false;
  std::string warning;
  bool stopped_early = false;  // should_stop ended the run
  std::string stop_reason;
  size_t num_not_sent = 0;  // requests never sent (not in `records`)
};

// p99 client lag above this marks a run as fallen behind (and warns).
inline constexpr double kLagWarnP99S = 0.005;
inline constexpr double kLagWarnMaxS = 0.050;

Result<LoadResult> run_load(const Workload& workload, const LoadOptions& options);

// Classifies a failed exchange for "errors by kind": http_4xx, http_5xx,
// timeout, connection, stream_error, short_output, cancelled.
std::string error_kind_of(int http_status, const Status& status);

}  // namespace baton::bench
