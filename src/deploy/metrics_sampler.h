// Watches a deployment from outside while a trial runs: scrapes every
// instance's /metrics (and the router's) at a fixed interval, appends each
// sample as a JSON line, and sums up each instance's load over the window
// (queue and batch peaks, KV usage, preemptions, lease expirations). A
// trial's max QPS says where an SLO broke; this says which instance queued.
//
//   MetricsSampler s(targets, {.interval_s = 0.5, .out_path = ".../w.metrics.jsonl", .tags = {{"trial", 3}}});
//   s.start();  ... run the trial ...  auto loads = s.stop();
#pragma once

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace baton::deploy {

struct SampleTarget {
  std::string name;  // "prefill-0", "router"
  std::string role;  // "prefill", "decode", "agg", "router"
  std::string url;   // http://HOST:PORT (the sampler adds /metrics)
};

struct MetricsSamplerOptions {
  double interval_s = 0.5;
  double scrape_timeout_s = 1.0;
  std::string out_path;        // JSON lines, appended; empty: keep only the summary
  Json tags = Json::object();  // copied into every line (e.g. {"trial": 3, "rate": 12})
};

// One instance over the sampled window. Peaks are of the gauges; deltas are of
// the counters between the first and the last good scrape.
struct InstanceLoad {
  std::string name, role;
  int num_samples = 0;                                        // good scrapes
  int num_failed = 0;                                         // scrapes that got no answer or an unreadable one
  std::string last_error;                                     // of the last failed scrape
  double max_running = 0, max_waiting = 0, max_kv_usage = 0;  // kv_usage: 0..1
  double max_in_flight = 0;                                   // the router's requests in flight
  double max_kv_leases = 0;  // a prefill instance's prompts whose KV waits to be pulled
  double preemptions = 0, lease_expirations = 0, transfers_failed = 0;
};

class MetricsSampler {
 public:
  MetricsSampler(std::vector<SampleTarget> targets, MetricsSamplerOptions options);
  ~MetricsSampler();
  MetricsSampler(const MetricsSampler&) = delete;
  MetricsSampler& operator=(const MetricsSampler&) = delete;

  // Opens the output and starts scraping (the first round at once).
  Status start();
  // Scrapes a last round, stops, and returns each target's load, in target
  // order (none if start() did not succeed).
  std::vector<InstanceLoad> stop();

  // The series a sample keeps: short name -> metric name.
  static const std::vector<std::pair<std::string, std::string>>& kept_series();

 private:
  void loop();
  void scrape_all(double t_s);

  std::vector<SampleTarget> targets_;
  MetricsSamplerOptions options_;
  std::vector<InstanceLoad> loads_;
  std::vector<Json> first_, last_;  // counters of the first and last good scrape, per target
  std::ofstream out_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool started_ = false;
  double start_s_ = 0;
};

// The loads as a JSON array (one object per target), for result files.
Json instance_loads_json(const std::vector<InstanceLoad>& loads);

// "prefill-0 (prefill): waiting max 12, running max 30, KV max 45%; ..." for a log.
std::string format_instance_loads(const std::vector<InstanceLoad>& loads);

}  // namespace baton::deploy
