// One benchmark run at one rate: build the workload (seeded), drive the load,
// compute the metrics and the SLO verdict. The rate search calls it once per
// trial.
#pragma once

#include <optional>
#include <string>

#include "bench/load_generator.h"
#include "bench/metrics.h"
#include "bench/prefix_cache_check.h"
#include "bench/rate_search.h"
#include "bench/slo.h"
#include "bench/workload.h"

namespace baton::bench {

struct BenchConfig {
  WorkloadOptions workload;
  LoadOptions load;
  SloSpec slo;
  std::string label = "default";  // the deployment this run measures
  // Stop the run as soon as its SLO verdict is certainly FAIL (SloWatch):
  // its report keeps the requests sent, its verdict is FAIL with the certain
  // target, and its trial never counts as close to the limit.
  bool early_stop = false;
  // Origins (http://HOST:PORT) whose /metrics are read before and after the
  // run for their prefix-cache hits (prefix_cache_check.h); empty: not checked.
  std::vector<std::string> metrics_urls;
};

// How often an early-stopping run checks its SLO (at most).
inline constexpr double kEarlyStopIntervalS = 0.25;

struct RunReport {
  // Requests/s asked for (sessions/s for multiturn); the rate the server was
  // offered is metrics.offered_rate (a rescaled trace's window, client lag and
  // an early stop make the two differ), and reports lead with that one.
  double target_rate = 0;
  Json workload_describe;
  LoadResult load;
  RunMetrics metrics;
  SloReport slo;
  PrefixCacheCheck prefix_cache;
  // Summary without the per-request records.
  Json to_json() const;
  TrialOutcome to_trial() const;
};

// Runs the configured workload; `rate` (when set) replaces the arrival rate
// (for a trace: rescales its time so that it arrives at that rate).
Result<RunReport> run_benchmark(const BenchConfig& config, std::optional<double> rate = std::nullopt);

// One JSON object per request (the JSONL records).
Json record_to_json(const RequestRecord& r);

}  // namespace baton::bench
