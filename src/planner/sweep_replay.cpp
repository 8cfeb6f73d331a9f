#include "planner/sweep_replay.h"

#include <limits>

#include "bench/slo.h"
#include "bench/trial_engine.h"

namespace baton::planner {

Result<bench::SearchOptions> recorded_search_options(const Json& doc) {
  const Json& sweep = doc["config"]["sweep"];
  if (!sweep.contains("search") || !sweep["search"].is_object()) {
    return invalid_argument("the result records no config.sweep.search to run again");
  }
  const Json& s = sweep["search"];
  bench::SearchOptions o;
  o.start_rate = s.value("start_rate", o.start_rate);
  o.precision = s.value("precision", o.precision);
  o.min_rate = s.value("min_rate", o.min_rate);
  o.max_rate = s.value("max_rate", o.max_rate);
  o.close_margin = s.value("close_margin", o.close_margin);
  o.max_trials = s.value("max_trials", o.max_trials);
  BATON_RETURN_IF_ERROR(bench::validate(o));
  return o;
}

Result<bench::SearchResult> search_as_swept(const Json& doc, const PlanInputs& inputs, const DeploymentSpec& d,
                                            std::vector<EngineWarmth>* warmth) {
  BATON_ASSIGN_OR_RETURN(bench::SearchOptions options, recorded_search_options(doc));
  const Json& sweep = doc["config"]["sweep"];
  const uint64_t seed = sweep["search"].value("seed", uint64_t{0});
  const uint64_t base = bench::series_seed(seed, sweep.value("workload", std::string()));
  size_t k = 0;
  bench::TrialFn trial = [&](double rate) -> Result<bench::TrialOutcome> {
    PlanInputs in = inputs;
    in.workload.seed = bench::trial_seed(base, k++);
    in.workload.arrival.seed = in.workload.seed;
    in.warmth = warmth;
    BATON_ASSIGN_OR_RETURN(SimResult sim, simulate_at(in, d, in.model, rate));
    const bench::SloReport slo = bench::evaluate_slo(in.slo, sim.records, sim.duration_s);
    bench::TrialOutcome t;
    t.rate = rate;
    t.sustainable = slo.sustainable;
    t.first_broken = slo.first_broken;
    for (const bench::TargetResult& r : slo.targets) t.worst_ratio = std::max(t.worst_ratio, r.ratio);
    return t;
  };
  return bench::search_max_rate(trial, options);
}

}  // namespace baton::planner
