#include "planner/trial_replay.h"

#include <fstream>

#include "bench/bench_run.h"
#include "bench/metrics.h"
#include "bench/trial_engine.h"

namespace baton::planner {

namespace {

TrialLatency latency_of(const std::vector<bench::RequestRecord>& records, const bench::SloReport& slo) {
  std::vector<double> ttft, tpot;
  for (const bench::RequestRecord& r : records) {
    if (r.warmup || !r.ok) continue;
    ttft.push_back(r.ttft_s() * 1e3);
    if (r.output_tokens >= 2) tpot.push_back(r.tpot_s() * 1e3);
  }
  TrialLatency t;
  t.ttft_p50_ms = ttft.empty() ? 0 : bench::percentile(ttft, 50);
  t.ttft_p90_ms = ttft.empty() ? 0 : bench::percentile(ttft, 90);
  t.tpot_p50_ms = tpot.empty() ? 0 : bench::percentile(tpot, 50);
  t.tpot_p90_ms = tpot.empty() ? 0 : bench::percentile(tpot, 90);
  t.sustainable = slo.sustainable;
  return t;
}

// A recorded percentile: runs[k].metrics.METRIC.STAT (0 when the trial measured none).
double recorded(const Json& metrics, const char* metric, const char* stat) {
  if (!metrics.contains(metric) || !metrics[metric].is_object()) return 0;
  const Json& m = metrics[metric];
  return m.contains(stat) && m[stat].is_number() ? m[stat].get<double>() : 0;
}

Result<TrialLatency> measured_of(const Json& run, size_t k) {
  if (!run.is_object() || !run.contains("metrics") || !run.contains("slo") || !run["slo"].is_object()) {
    return invalid_argument("runs[{}] of the result has no metrics or slo", k);
  }
  const Json& m = run["metrics"];
  TrialLatency t;
  t.ttft_p50_ms = recorded(m, "ttft_ms", "p50");
  t.ttft_p90_ms = recorded(m, "ttft_ms", "p90");
  t.tpot_p50_ms = recorded(m, "tpot_ms", "p50");
  t.tpot_p90_ms = recorded(m, "tpot_ms", "p90");
  t.sustainable = run["slo"].value("sustainable", false);
  return t;
}

}  // namespace

Json TrialLatency::to_json() const {
  return Json{{"ttft_p50_ms", ttft_p50_ms},
              {"ttft_p90_ms", ttft_p90_ms},
              {"tpot_p50_ms", tpot_p50_ms},
              {"tpot_p90_ms", tpot_p90_ms},
              {"sustainable", sustainable}};
}

Json TrialComparison::to_json() const {
  return Json{{"trial", index},
              {"rate", rate},
              {"measured", measured.to_json()},
              {"simulated", simulated.to_json()},
              {"first_use_s", first_use_s}};
}

Result<std::vector<TrialComparison>> replay_trials(const Json& doc, const PlanInputs& inputs,
                                                   const DeploymentSpec& deployment, const std::string& records_path) {
  if (!doc.contains("runs") || !doc["runs"].is_array()) return invalid_argument("the result has no runs[] to replay");
  const Json& sweep = doc["config"]["sweep"];
  const uint64_t sweep_seed = sweep.contains("search") ? sweep["search"].value("seed", uint64_t{0}) : 0;
  const uint64_t base = bench::series_seed(sweep_seed, sweep.value("workload", std::string()));
  std::ofstream records;
  if (!records_path.empty()) {
    records.open(records_path);
    if (!records) return unavailable("cannot write '{}'", records_path);
  }
  std::vector<TrialComparison> out;
  for (size_t k = 0; k < doc["runs"].size(); ++k) {
    const Json& run = doc["runs"][k];
    TrialComparison c;
    c.index = k;
    c.rate = run.value("target_rate_rps", 0.0);
    if (!(c.rate > 0)) return invalid_argument("runs[{}] of the result has no positive target_rate_rps", k);
    BATON_ASSIGN_OR_RETURN(c.measured, measured_of(run, k));
    PlanInputs in = inputs;
    in.workload.seed = bench::trial_seed(base, k);
    in.workload.arrival.seed = in.workload.seed;
    auto paid = [&] {
      double total = 0;
      if (in.warmth != nullptr) {
        for (const EngineWarmth& w : *in.warmth) total += w.seconds;
      }
      return total;
    };
    const double before = paid();
    BATON_ASSIGN_OR_RETURN(SimResult sim, simulate_at(in, deployment, in.model, c.rate));
    c.first_use_s = paid() - before;
    c.simulated = latency_of(sim.records, bench::evaluate_slo(in.slo, sim.records, sim.duration_s));
    if (records.is_open()) {
      for (const bench::RequestRecord& r : sim.records) {
        Json j = bench::record_to_json(r);
        j["trial"] = k;
        records << j.dump() << '\n';
      }
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace baton::planner
