#include "bench/bench_run.h"

#include <cmath>
#include <limits>
#include <memory>

#include "bench/slo_watch.h"

namespace baton::bench {

Result<RunReport> run_benchmark(const BenchConfig& config, std::optional<double> rate) {
  WorkloadOptions wo = config.workload;
  if (rate) {
    wo.arrival.rate = *rate;
    if (wo.kind == "trace") wo.rate_overrides_trace = true;
  }
  BATON_ASSIGN_OR_RETURN(auto workload, make_workload(wo));
  RunReport rep;
  rep.target_rate = wo.kind == "trace" ? (workload.natural_rate / workload.time_scale) : wo.arrival.rate;
  rep.workload_describe = workload.describe;
  rep.workload_describe["kind"] = workload.kind;
  rep.workload_describe["num_requests"] = workload.requests.size();
  LoadOptions lo = config.load;
  auto watch = std::make_shared<std::unique_ptr<SloWatch>>();
  auto broken = std::make_shared<std::string>();  // the certain target, once stopped
  if (config.early_stop && !config.slo.empty()) {
    lo.progress_interval_s = std::min(lo.progress_interval_s, kEarlyStopIntervalS);
    lo.should_stop = [watch, slo = config.slo, broken](const StopCheck& c) -> std::optional<std::string> {
      if (!*watch) *watch = std::make_unique<SloWatch>(slo, c.num_measured);
      for (const auto& r : c.finished) (*watch)->on_finished(r);
      auto b = (*watch)->certainly_broken(c.in_flight);
      if (!b) return std::nullopt;
      *broken = b->target;
      return b->reason;
    };
  }
  std::optional<double> hits_before;
  if (!config.metrics_urls.empty()) hits_before = read_prefix_cache_hits(config.metrics_urls);
  BATON_ASSIGN_OR_RETURN(rep.load, run_load(workload, lo));
  rep.metrics = compute_metrics(rep.load.records);
  if (!config.metrics_urls.empty()) {
    rep.prefix_cache = check_prefix_cache(hits_before, read_prefix_cache_hits(config.metrics_urls),
                                          rep.metrics.total_input_tokens, workload_shares_prefixes(workload));
  }
  // The warm-up never takes more than half a run (LoadOptions), so only a run that measured nothing
  // at all gets here: an empty schedule.
  if (rep.metrics.num_requests + rep.metrics.num_cancelled == 0) {
    return invalid_argument("the run at {:.3f} req/s sent no measured request: nothing to measure", rep.target_rate);
  }
  rep.slo = evaluate_slo(config.slo, rep.load.records, rep.metrics.duration_s);
  if (rep.load.stopped_early) {
    rep.slo.sustainable = false;
    rep.slo.stopped_early = true;
    rep.slo.stop_reason = rep.load.stop_reason;
    rep.slo.first_broken = *broken;
  }
  return rep;
}

TrialOutcome RunReport::to_trial() const {
  TrialOutcome t;
  t.rate = target_rate;
  t.sustainable = slo.sustainable;
  t.first_broken = slo.first_broken;
  t.worst_ratio = 0;
  for (const auto& tr : slo.targets) t.worst_ratio = std::max(t.worst_ratio, tr.ratio);
  // A stopped run failed for certain: never "close" (the search repeats close trials). Its
  // ratio is not a measurement (its slowest requests were cancelled): infinite, and said as
  // "stopped early" wherever it is printed.
  t.stopped_early = slo.stopped_early;
  if (slo.stopped_early) t.worst_ratio = std::numeric_limits<double>::infinity();
  t.summary = to_json();
  return t;
}

Json RunReport::to_json() const {
  Json j{{"target_rate_rps", target_rate},
         {"workload", workload_describe},
         {"metrics", metrics.to_json()},
         {"slo", slo.to_json()},
         {"client",
          {{"wall_s", load.wall_s},
           {"max_in_flight", load.max_in_flight},
           {"connections_opened", load.num_connections_opened},
           {"lag_p99_ms", load.lag_p99_s * 1e3},
           {"lag_max_ms", load.lag_max_s * 1e3},
           {"fell_behind", load.fell_behind},
           {"warning", load.warning},
           {"stopped_early", load.stopped_early},
           {"stop_reason", load.stop_reason},
           {"not_sent", load.num_not_sent},
           {"warmup_note", load.warmup_note}}},
         {"prefix_cache", prefix_cache.to_json()}};
  return j;
}

Json record_to_json(const RequestRecord& r) {
  auto ms = [](double s) { return std::round(s * 1e6) / 1e3; };
  Json j{{"index", r.index},
         {"warmup", r.warmup},
         {"ok", r.ok},
         {"scheduled_ms", ms(r.scheduled_s)},
         {"send_ms", ms(r.send_s)},
         {"scheduling_delay_ms", ms(r.scheduling_delay_s())},
         {"end_ms", ms(r.end_s)},
         {"prompt_tokens", r.prompt_tokens},
         {"output_tokens", r.output_tokens},
         {"expected_output_tokens", r.expected_output_tokens},
         {"usage_reported", r.usage_reported}};
  if (r.cancelled) j["cancelled"] = true;
  if (r.session >= 0) {
    j["session"] = r.session;
    j["turn"] = r.turn;
  }
  if (r.ok) {
    j["ttft_ms"] = r.first_token_s >= 0 ? Json(ms(r.ttft_s())) : Json(nullptr);
    j["e2e_ms"] = ms(r.e2e_s());
    j["tpot_ms"] = r.output_tokens >= 2 && r.first_token_s >= 0 ? Json(ms(r.tpot_s())) : Json(nullptr);
    Json itl = Json::array();
    for (double g : r.itl_s()) itl.push_back(ms(g));
    j["itl_ms"] = std::move(itl);
  } else {
    j["error_kind"] = r.error_kind;
    j["error"] = r.error;
  }
  return j;
}

}  // namespace baton::bench
