// The planner's answer: for a model's measured step times, a number of GPUs,
// a workload and an SLO, the highest request rate each deployment sustains
// (agg, and every xPyD split of the GPUs), with the engine's token budget
// chosen per role, and the deployment to run. Every rate comes from
// simulating the workload at that rate (ClusterSim) and judging it with the
// bench's own SLO code; the band comes from the same search with the
// step-time model perturbed by its fit's residuals.
#pragma once

#include <string>
#include <vector>

#include "bench/slo.h"
#include "bench/workload.h"
#include "common/json.h"
#include "common/status.h"
#include "planner/cluster_sim.h"
#include "planner/step_time_model.h"

namespace baton::planner {

struct PlanInputs {
  bench::WorkloadOptions workload;  // its arrival rate is what the search varies
  size_t num_warmup = 0;            // requests a trial does not measure, as the bench
  double warmup_s = 0;
  bench::SloSpec slo;
  StepTimeModel model;
  double model_rel_error = 0;  // the band: the model scaled by 1 -/+ this
  TransferModel transfer;
  int num_gpus = 1;       // one GPU per instance (until instances span GPUs)
  int num_kv_blocks = 0;  // per instance
  int block_size = 16;
  int max_num_seqs = 256;
  std::vector<int> token_budgets = {1024, 2048, 4096, 8192};  // max_num_batched_tokens tried per role
  SimPolicy policy = SimPolicy::kRoundRobin;
  double router_hop_s = 0.0005;
  double max_rate = 1000;        // the search's ceiling (req/s, or sessions/s)
  double rate_precision = 0.02;  // relative width the bisection stops at
  // Cold processes (engine_warmup.h, SimOptions): each simulated trial pays
  // the first uses of shapes that *warmth has not met, and adds them to it.
  // Unset (the plan's default): steady state.
  const FirstUseModel* first_use = nullptr;
  std::vector<EngineWarmth>* warmth = nullptr;
};

struct DeploymentPlan {
  std::string name;  // "agg-4gpu", "pd-1p3d", ...
  int num_agg = 0, num_prefill = 0, num_decode = 0;
  int prefill_budget = 0;              // agg: the replicas' budget
  int decode_budget = 0;               // PD only
  double max_rate = 0;                 // predicted: the highest rate that met the SLO (0: none did)
  double rate_low = 0, rate_high = 0;  // the band (model slower / faster by its residuals)
  std::string first_broken;            // just above max_rate: the target that broke
  Json to_json() const;
};

struct Plan {
  std::vector<DeploymentPlan> deployments;  // agg first, then 1P(N-1)D ... (N-1)P1D
  int recommended = -1;                     // index of the highest max_rate
  std::string rate_unit;
  Json to_json() const;
};

// The workload at `rate` (its seed as inputs.workload has it), simulated:
// one trial of the search, before it is judged.
Result<SimResult> simulate_at(const PlanInputs& inputs, const DeploymentSpec& deployment, const StepTimeModel& model,
                              double rate);

// The highest rate in (0, inputs.max_rate] at which `deployment` meets the
// SLO under `model`, to inputs.rate_precision; 0 when even the lowest rate
// tried fails. `first_broken` gets the target that broke above it.
Result<double> max_sustainable_rate(const PlanInputs& inputs, const DeploymentSpec& deployment,
                                    const StepTimeModel& model, std::string* first_broken = nullptr);

Result<Plan> make_plan(const PlanInputs& inputs);

}  // namespace baton::planner
