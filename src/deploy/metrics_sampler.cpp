#include "deploy/metrics_sampler.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "common/clock.h"
#include "common/metrics_text.h"
#include "http/http_client.h"

namespace baton::deploy {

namespace {

double value_or(const Json& j, const char* key, double fallback = 0) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

// A counter's growth over the window (0 when either end lacks it).
double delta(const Json& first, const Json& last, const char* key) {
  if (!first.contains(key) || !last.contains(key)) return 0;
  return std::max(0.0, value_or(last, key) - value_or(first, key));
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& MetricsSampler::kept_series() {
  static const std::vector<std::pair<std::string, std::string>> series = {
      {"running", "baton:num_requests_running"},
      {"waiting", "baton:num_requests_waiting"},
      {"kv_usage", "baton:kv_cache_usage_perc"},
      {"kv_leases", "baton:kv_leases"},
      {"kv_blocks_pinned", "baton:kv_blocks_pinned"},
      {"preemptions", "baton:num_preemptions_total"},
      {"prompt_tokens", "baton:prompt_tokens_total"},
      {"generation_tokens", "baton:generation_tokens_total"},
      {"prefix_cache_queries", "baton:prefix_cache_queries_total"},
      {"prefix_cache_hits", "baton:prefix_cache_hits_total"},
      {"kv_transfers", "baton:kv_transfers_total"},
      {"kv_transfers_failed", "baton:kv_transfers_failed_total"},
      {"kv_lease_expirations", "baton:kv_lease_expirations_total"},
      {"router_in_flight", "baton:router_requests_in_flight"},
  };
  return series;
}

MetricsSampler::MetricsSampler(std::vector<SampleTarget> targets, MetricsSamplerOptions options)
    : targets_(std::move(targets)), options_(std::move(options)) {
  for (const auto& t : targets_) {
    InstanceLoad l;
    l.name = t.name;
    l.role = t.role;
    loads_.push_back(std::move(l));
  }
  first_.assign(targets_.size(), Json());
  last_.assign(targets_.size(), Json());
}

MetricsSampler::~MetricsSampler() {
  if (thread_.joinable()) stop();
}

Status MetricsSampler::start() {
  if (thread_.joinable()) return failed_precondition("the metrics sampler is already running");
  if (!(options_.interval_s > 0)) return invalid_argument("metrics sampler: the interval must be > 0 s");
  if (!options_.out_path.empty()) {
    out_.open(options_.out_path, std::ios::app);
    if (!out_) return unavailable("metrics sampler: cannot open '{}' for writing", options_.out_path);
  }
  stop_ = false;
  started_ = true;
  start_s_ = monotonic_s();
  thread_ = std::thread([this] { loop(); });
  return Status::ok();
}

std::vector<InstanceLoad> MetricsSampler::stop() {
  if (!started_) return {};  // never sampled: nothing to say
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    scrape_all(monotonic_s() - start_s_);  // the window's end
  }
  if (out_.is_open()) out_.close();
  for (size_t i = 0; i < targets_.size(); ++i) {
    loads_[i].preemptions = delta(first_[i], last_[i], "preemptions");
    loads_[i].lease_expirations = delta(first_[i], last_[i], "kv_lease_expirations");
    loads_[i].transfers_failed = delta(first_[i], last_[i], "kv_transfers_failed");
  }
  return loads_;
}

void MetricsSampler::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  double next = monotonic_s();
  while (!stop_) {
    lock.unlock();
    scrape_all(monotonic_s() - start_s_);
    lock.lock();
    next += options_.interval_s;
    double wait = std::max(0.0, next - monotonic_s());
    cv_.wait_for(lock, std::chrono::duration<double>(wait), [this] { return stop_; });
  }
}

void MetricsSampler::scrape_all(double t_s) {
  for (size_t i = 0; i < targets_.size(); ++i) {
    const SampleTarget& t = targets_[i];
    InstanceLoad& load = loads_[i];
    Json line = options_.tags.is_object() ? options_.tags : Json::object();
    line["t_s"] = std::round(t_s * 1000) / 1000;
    line["instance"] = t.name;
    line["role"] = t.role;
    auto r = http::fetch(t.url + "/metrics", "GET", {}, options_.scrape_timeout_s);
    Result<std::map<std::string, double>> parsed = invalid_argument("no answer");
    if (!r.is_ok()) {
      parsed = r.status();
    } else if (r->status != 200) {
      parsed = unavailable("GET /metrics answered {}", r->status);
    } else {
      parsed = sum_metrics_by_name(r->body);
    }
    if (!parsed.is_ok()) {
      ++load.num_failed;
      load.last_error = parsed.status().message();
      line["error"] = load.last_error;
    } else {
      Json values = Json::object();
      for (const auto& [short_name, metric] : kept_series()) {
        auto it = parsed->find(metric);
        if (it != parsed->end() && std::isfinite(it->second)) values[short_name] = it->second;
      }
      ++load.num_samples;
      load.max_running = std::max(load.max_running, value_or(values, "running"));
      load.max_waiting = std::max(load.max_waiting, value_or(values, "waiting"));
      load.max_kv_usage = std::max(load.max_kv_usage, value_or(values, "kv_usage"));
      load.max_in_flight = std::max(load.max_in_flight, value_or(values, "router_in_flight"));
      load.max_kv_leases = std::max(load.max_kv_leases, value_or(values, "kv_leases"));
      if (first_[i].is_null()) first_[i] = values;
      last_[i] = values;
      for (auto& [k, v] : values.items()) line[k] = v;
    }
    if (out_.is_open()) out_ << line.dump() << '\n';
  }
  if (out_.is_open()) out_.flush();
}

Json instance_loads_json(const std::vector<InstanceLoad>& loads) {
  Json out = Json::array();
  for (const auto& l : loads) {
    Json j{{"instance", l.name}, {"role", l.role}, {"samples", l.num_samples}, {"failed_samples", l.num_failed}};
    if (l.role == "router") {
      j["max_in_flight"] = l.max_in_flight;
    } else {
      j["max_waiting"] = l.max_waiting;
      j["max_running"] = l.max_running;
      j["max_kv_usage"] = l.max_kv_usage;
      j["max_kv_leases"] = l.max_kv_leases;
      j["preemptions"] = l.preemptions;
      j["kv_lease_expirations"] = l.lease_expirations;
      j["kv_transfers_failed"] = l.transfers_failed;
    }
    out.push_back(std::move(j));
  }
  return out;
}

std::string format_instance_loads(const std::vector<InstanceLoad>& loads) {
  std::string s;
  for (const auto& l : loads) {
    s += fmt::format("    {} ({}): ", l.name, l.role);
    if (l.num_samples == 0) {
      s += fmt::format("no sample ({} failed: {})\n", l.num_failed, l.last_error);
      continue;
    }
    if (l.role == "router") {
      s += fmt::format("in flight max {:g}", l.max_in_flight);
    } else {
      s += fmt::format("waiting max {:g}, running max {:g}, KV max {:.1f}%", l.max_waiting, l.max_running,
                       l.max_kv_usage * 100);
      if (l.role == "prefill") s += fmt::format(", KV leases max {:g}", l.max_kv_leases);
      if (l.preemptions > 0) s += fmt::format(", {:g} preemptions", l.preemptions);
      if (l.lease_expirations > 0) s += fmt::format(", {:g} KV leases expired", l.lease_expirations);
      if (l.transfers_failed > 0) s += fmt::format(", {:g} KV transfers failed", l.transfers_failed);
    }
    s += fmt::format(" ({} samples", l.num_samples);
    if (l.num_failed > 0) s += fmt::format(", {} failed: {}", l.num_failed, l.last_error);
    s += ")\n";
  }
  return s;
}

}  // namespace baton::deploy
