#include "bench/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>

namespace baton::bench {

std::vector<double> RequestRecord::itl_s() const {
  std::vector<double> out;
  for (size_t i = 1; i < chunk_s.size(); ++i) out.push_back(chunk_s[i] - chunk_s[i - 1]);
  return out;
}

double percentile_sorted(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return std::numeric_limits<double>::quiet_NaN();
  p = std::clamp(p, 0.0, 100.0);
  double rank = p / 100.0 * static_cast<double>(sorted.size() - 1);
  auto lo = static_cast<size_t>(std::floor(rank));
  auto hi = static_cast<size_t>(std::ceil(rank));
  double frac = rank - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return percentile_sorted(values, p);
}

Distribution summarize(std::vector<double> values) {
  Distribution d;
  std::sort(values.begin(), values.end());
  d.count = values.size();
  if (values.empty()) {
    double nan = std::numeric_limits<double>::quiet_NaN();
    d.mean = d.stddev = d.min = d.max = d.p50 = d.p90 = d.p95 = d.p99 = nan;
    return d;
  }
  d.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  double ss = 0;
  for (double v : values) ss += (v - d.mean) * (v - d.mean);
  d.stddev = std::sqrt(ss / static_cast<double>(values.size()));  // population, as numpy's std
  d.min = values.front();
  d.max = values.back();
  d.p50 = percentile_sorted(values, 50);
  d.p90 = percentile_sorted(values, 90);
  d.p95 = percentile_sorted(values, 95);
  d.p99 = percentile_sorted(values, 99);
  d.sorted = std::move(values);
  return d;
}

Result<double> Distribution::statistic(const std::string& name) const {
  if (name == "mean") return mean;
  if (name == "median") return p50;
  if (name == "min") return min;
  if (name == "max") return max;
  if (name.size() >= 2 && name[0] == 'p') {
    try {
      size_t used = 0;
      double p = std::stod(name.substr(1), &used);
      if (used == name.size() - 1 && p >= 0 && p <= 100) return percentile_sorted(sorted, p);
    } catch (const std::exception&) {
    }
  }
  return invalid_argument("unknown statistic '{}' (use mean, median, min, max or pNN such as p90, p99.9)", name);
}

Json Distribution::to_json(double scale) const {
  auto v = [&](double x) -> Json {
    if (std::isnan(x)) return nullptr;
    return x * scale;
  };
  return Json{{"count", count}, {"mean", v(mean)}, {"median", v(p50)}, {"std", v(stddev)}, {"min", v(min)},
              {"p50", v(p50)},  {"p90", v(p90)},   {"p95", v(p95)},    {"p99", v(p99)},    {"max", v(max)}};
}

RunMetrics compute_metrics(const std::vector<RequestRecord>& records) {
  RunMetrics m;
  std::vector<double> ttft, tpot, itl, e2e, ttft_arr, e2e_arr, sched, lag;
  double first_send = std::numeric_limits<double>::infinity(), last_end = 0;
  double first_sched = std::numeric_limits<double>::infinity(), last_sched = -1;
  size_t num_sent = 0;  // measured, cancelled ones included
  for (const auto& r : records) {
    if (r.warmup) continue;
    ++num_sent;
    first_sched = std::min(first_sched, r.scheduled_s);
    last_sched = std::max(last_sched, r.scheduled_s);
    if (r.cancelled) {
      ++m.num_cancelled;
      continue;
    }
    ++m.num_requests;
    first_send = std::min(first_send, r.send_s);
    last_end = std::max(last_end, r.end_s);
    sched.push_back(r.scheduling_delay_s());
    lag.push_back(r.client_lag_s());
    if (!r.ok) {
      ++m.num_failed;
      ++m.errors_by_kind[r.error_kind.empty() ? "unknown" : r.error_kind];
      continue;
    }
    ++m.num_ok;
    m.total_input_tokens += r.prompt_tokens;
    m.total_output_tokens += r.output_tokens;
    if (!r.usage_reported) ++m.num_without_usage;
    if (r.first_token_s >= 0) {
      ttft.push_back(r.ttft_s());
      ttft_arr.push_back(r.first_token_s - r.scheduled_s);
    }
    e2e.push_back(r.e2e_s());
    e2e_arr.push_back(r.end_s - r.scheduled_s);
    if (r.output_tokens >= 2 && r.first_token_s >= 0) tpot.push_back(r.tpot_s());
    auto gaps = r.itl_s();
    itl.insert(itl.end(), gaps.begin(), gaps.end());
  }
  if (m.num_requests > 0) m.duration_s = std::max(0.0, last_end - first_send);
  if (num_sent >= 2 && last_sched > first_sched) {
    m.offered_rate = static_cast<double>(num_sent - 1) / (last_sched - first_sched);
  }
  if (m.duration_s > 0) {
    m.request_throughput = static_cast<double>(m.num_ok) / m.duration_s;
    m.output_token_throughput = static_cast<double>(m.total_output_tokens) / m.duration_s;
    m.total_token_throughput = static_cast<double>(m.total_input_tokens + m.total_output_tokens) / m.duration_s;
  }
  m.ttft_s = summarize(std::move(ttft));
  m.tpot_s = summarize(std::move(tpot));
  m.itl_s = summarize(std::move(itl));
  m.e2e_s = summarize(std::move(e2e));
  m.ttft_from_arrival_s = summarize(std::move(ttft_arr));
  m.e2e_from_arrival_s = summarize(std::move(e2e_arr));
  m.scheduling_delay_s = summarize(std::move(sched));
  m.client_lag_s = summarize(std::move(lag));
  return m;
}

Json RunMetrics::to_json() const {
  Json errors = Json::object();
  for (const auto& [k, v] : errors_by_kind) errors[k] = v;
  return Json{
      {"duration_s", duration_s},
      {"num_requests", num_requests},
      {"num_ok", num_ok},
      {"num_failed", num_failed},
      {"num_cancelled", num_cancelled},
      {"errors_by_kind", errors},
      {"total_input_tokens", total_input_tokens},
      {"total_output_tokens", total_output_tokens},
      {"num_without_usage", num_without_usage},
      {"offered_rate_rps", offered_rate > 0 ? Json(offered_rate) : Json(nullptr)},  // null: under 2 arrivals
      {"request_throughput_rps", request_throughput},
      {"output_token_throughput_tps", output_token_throughput},
      {"total_token_throughput_tps", total_token_throughput},
      {"ttft_ms", ttft_s.to_json(1e3)},
      {"tpot_ms", tpot_s.to_json(1e3)},
      {"itl_ms", itl_s.to_json(1e3)},
      {"e2e_ms", e2e_s.to_json(1e3)},
      {"ttft_from_arrival_ms", ttft_from_arrival_s.to_json(1e3)},
      {"e2e_from_arrival_ms", e2e_from_arrival_s.to_json(1e3)},
      {"scheduling_delay_ms", scheduling_delay_s.to_json(1e3)},
      {"client_lag_ms", client_lag_s.to_json(1e3)},
  };
}

std::string metric_definitions() {
  return "Metric definitions (times from the client's monotonic clock):\n"
         "  TTFT  = first content-bearing chunk - send\n"
         "  TPOT  = (E2E - TTFT) / (output tokens - 1), requests with >= 2 output tokens\n"
         "  ITL   = gap between consecutive content-bearing chunks, pooled over requests\n"
         "  E2E   = response complete - send\n"
         "  *_from_arrival = the same from the scheduled arrival (includes client delays)\n"
         "  scheduling delay = send - scheduled arrival (includes --max-concurrency waits)\n"
         "  cancelled = requests the bench itself cancelled when it stopped a run early:\n"
         "    neither ok nor failed, and in no latency, percentile or SLO figure\n"
         "  offered rate = measured requests sent / span of their scheduled arrivals\n"
         "  client lag = send - moment the request could go (the client's own delay)\n"
         "  output tokens = usage.completion_tokens from the server\n"
         "  throughput = successful requests (tokens) / (last completion - first send)\n"
         "  percentiles: linear interpolation between closest ranks (numpy default)\n";
}

}  // namespace baton::bench
