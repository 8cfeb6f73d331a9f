// The server's Prometheus metrics, named after vLLM's (prefix "baton:"):
// engine gauges and counters are read from EngineStats at scrape time,
// per-request histograms are recorded when a request finishes.
#pragma once

#include <string>
#include <vector>

#include "common/metrics_registry.h"
#include "engine/request_types.h"

namespace baton {

// Timings of one finished request, in seconds on the monotonic clock.
struct RequestTimings {
  double arrival_s = 0;
  double first_scheduled_s = 0;  // 0 if unknown
  double first_token_s = 0;      // 0 if no token was produced
  double finished_s = 0;
  std::vector<double> token_times_s;  // one per output token
};

class ServerMetrics {
 public:
  explicit ServerMetrics(std::string model_name);

  void record_finished(FinishReason reason, int num_output_tokens, const RequestTimings& t);

  // Reads the engine's state into the gauges and counters, then renders all.
  std::string render(const EngineStats& stats);

  MetricsRegistry& registry() { return registry_; }

 private:
  MetricLabels labels_;  // {model_name}
  MetricsRegistry registry_;
  Histogram* ttft_;
  Histogram* tpot_;
  Histogram* itl_;
  Histogram* e2e_;
  Histogram* queue_;
  Histogram* prefill_;
  Histogram* decode_;
};

}  // namespace baton
