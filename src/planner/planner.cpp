#include "planner/planner.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace baton::planner {

namespace {

bool needs_chunks(const bench::SloSpec& slo) {
  return std::any_of(slo.targets.begin(), slo.targets.end(),
                     [](const bench::SloTarget& t) { return t.metric == "itl"; });
}

// One trial: the workload at `rate`, simulated and judged.
Result<bench::SloReport> trial(const PlanInputs& in, const DeploymentSpec& d, const StepTimeModel& model, double rate) {
  BATON_ASSIGN_OR_RETURN(SimResult sim, simulate_at(in, d, model, rate));
  return bench::evaluate_slo(in.slo, sim.records, sim.duration_s);
}

SimInstanceOptions role_options(const PlanInputs& in, int budget) {
  SimInstanceOptions o;
  o.num_kv_blocks = in.num_kv_blocks;
  o.block_size = in.block_size;
  o.scheduler.max_num_seqs = in.max_num_seqs;
  o.scheduler.max_num_batched_tokens = budget;
  return o;
}

DeploymentSpec spec_of(const PlanInputs& in, const DeploymentPlan& p) {
  DeploymentSpec d;
  d.name = p.name;
  d.num_agg = p.num_agg;
  d.num_prefill = p.num_prefill;
  d.num_decode = p.num_decode;
  d.agg = d.prefill = role_options(in, p.prefill_budget);
  d.decode = role_options(in, p.num_agg > 0 ? p.prefill_budget : p.decode_budget);
  d.policy = in.policy;
  d.router_hop_s = in.router_hop_s;
  return d;
}

// The best budget (or pair of budgets) for one split, by predicted rate.
Result<DeploymentPlan> best_of_split(const PlanInputs& in, DeploymentPlan p) {
  DeploymentPlan best = p;
  best.max_rate = -1;
  const std::vector<int> decode_budgets = p.num_agg > 0 ? std::vector<int>{0} : in.token_budgets;
  for (int prefill_budget : in.token_budgets) {
    for (int decode_budget : decode_budgets) {
      DeploymentPlan c = p;
      c.prefill_budget = prefill_budget;
      c.decode_budget = decode_budget;
      BATON_ASSIGN_OR_RETURN(c.max_rate, max_sustainable_rate(in, spec_of(in, c), in.model, &c.first_broken));
      if (c.max_rate > best.max_rate) best = c;
    }
  }
  return best;
}

}  // namespace

Json DeploymentPlan::to_json() const {
  Json j{{"name", name},         {"num_agg", num_agg},   {"num_prefill", num_prefill}, {"num_decode", num_decode},
         {"max_rate", max_rate}, {"rate_low", rate_low}, {"rate_high", rate_high},     {"first_broken", first_broken}};
  if (num_agg > 0) {
    j["max_num_batched_tokens"] = prefill_budget;
  } else {
    j["prefill_max_num_batched_tokens"] = prefill_budget;
    j["decode_max_num_batched_tokens"] = decode_budget;
  }
  return j;
}

Json Plan::to_json() const {
  Json d = Json::array();
  for (const DeploymentPlan& p : deployments) d.push_back(p.to_json());
  Json j{{"deployments", d}, {"rate_unit", rate_unit}};
  if (recommended >= 0) j["recommended"] = deployments[static_cast<size_t>(recommended)].name;
  return j;
}

Result<SimResult> simulate_at(const PlanInputs& in, const DeploymentSpec& d, const StepTimeModel& model, double rate) {
  bench::WorkloadOptions w = in.workload;
  w.arrival.rate = rate;
  w.rate_overrides_trace = w.kind == "trace";  // a trace is replayed faster or slower to reach the rate
  BATON_ASSIGN_OR_RETURN(bench::Workload workload, bench::make_workload(w));
  SimOptions options;
  options.record_chunks = needs_chunks(in.slo);
  options.vocab_size = w.vocab_size;
  options.prompt_format = w.prompt_format;
  options.num_warmup = in.num_warmup;
  options.warmup_s = in.warmup_s;
  options.first_use = in.first_use;
  options.warmth = in.warmth;
  return simulate(d, workload, model, in.transfer, options);
}

Result<double> max_sustainable_rate(const PlanInputs& in, const DeploymentSpec& d, const StepTimeModel& model,
                                    std::string* first_broken) {
  // Grow from a low rate until a trial fails, then bisect (rates that pass
  // are assumed to form an interval from 0: the same assumption the bench's
  // search makes).
  double lo = 0, hi = 0;
  std::string broken;
  for (double rate = std::min(0.25, in.max_rate);; rate = std::min(rate * 2, in.max_rate)) {
    BATON_ASSIGN_OR_RETURN(bench::SloReport report, trial(in, d, model, rate));
    if (!report.sustainable) {
      hi = rate;
      broken = report.first_broken;
      break;
    }
    lo = rate;
    if (rate >= in.max_rate) {
      if (first_broken != nullptr) first_broken->clear();
      return lo;  // sustainable up to the ceiling searched
    }
  }
  while (hi - lo > in.rate_precision * hi) {
    const double mid = (lo + hi) / 2;
    BATON_ASSIGN_OR_RETURN(bench::SloReport report, trial(in, d, model, mid));
    if (report.sustainable) {
      lo = mid;
    } else {
      hi = mid;
      broken = report.first_broken;
    }
  }
  if (first_broken != nullptr) *first_broken = broken;
  return lo;
}

Result<Plan> make_plan(const PlanInputs& in) {
  if (in.num_gpus < 1) return invalid_argument("--gpus must be at least 1, got {}", in.num_gpus);
  if (in.token_budgets.empty()) return invalid_argument("no token budget to try");
  if (in.slo.empty()) return invalid_argument("the plan needs an SLO (--slo): the rate is the highest that meets it");
  BATON_RETURN_IF_ERROR(bench::validate(in.workload));
  Plan plan;
  plan.rate_unit = bench::rate_unit(in.workload.kind);
  std::vector<DeploymentPlan> splits;
  splits.push_back(DeploymentPlan{.name = fmt::format("agg-{}gpu", in.num_gpus), .num_agg = in.num_gpus});
  for (int p = 1; p < in.num_gpus; ++p) {
    splits.push_back(DeploymentPlan{
        .name = fmt::format("pd-{}p{}d", p, in.num_gpus - p), .num_prefill = p, .num_decode = in.num_gpus - p});
  }
  for (const DeploymentPlan& split : splits) {
    BATON_ASSIGN_OR_RETURN(DeploymentPlan best, best_of_split(in, split));
    best.rate_low = best.rate_high = best.max_rate;
    if (in.model_rel_error > 0) {
      const DeploymentSpec d = spec_of(in, best);
      BATON_ASSIGN_OR_RETURN(best.rate_low, max_sustainable_rate(in, d, in.model.scaled(1 + in.model_rel_error)));
      BATON_ASSIGN_OR_RETURN(best.rate_high,
                             max_sustainable_rate(in, d, in.model.scaled(std::max(0.0, 1 - in.model_rel_error))));
    }
    plan.deployments.push_back(best);
  }
  for (size_t i = 0; i < plan.deployments.size(); ++i) {
    if (plan.deployments[i].max_rate > 0 &&
        (plan.recommended < 0 ||
         plan.deployments[i].max_rate > plan.deployments[static_cast<size_t>(plan.recommended)].max_rate)) {
      plan.recommended = static_cast<int>(i);
    }
  }
  return plan;
}

}  // namespace baton::planner
