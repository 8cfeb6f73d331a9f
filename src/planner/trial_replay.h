// A recorded sweep's trials replayed in the simulator, for diagnosis: each
// measured trial k (its rate, and its seed by the sweep's rule,
// bench::trial_seed(bench::series_seed(seed, workload), k)) is simulated with
// the very workload it sent, and its latency percentiles set beside the
// measured ones. Where the two part says which cost the simulator lacks; it
// feeds no coefficient (docs/planner.md: fitted from measurements only).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "planner/planner.h"

namespace baton::planner {

// Percentiles of one trial's measured (not warm-up), successful requests, ms.
struct TrialLatency {
  double ttft_p50_ms = 0, ttft_p90_ms = 0;
  double tpot_p50_ms = 0, tpot_p90_ms = 0;
  bool sustainable = false;  // the SLO's verdict on the trial
  Json to_json() const;
};

struct TrialComparison {
  size_t index = 0;  // the trial's position in the sweep's series
  double rate = 0;   // its target rate (req/s or sessions/s)
  TrialLatency measured, simulated;
  double first_use_s = 0;  // cold processes (inputs.warmth): what the trial's first uses cost, all instances
  Json to_json() const;
};

// Every trial of a result document (`runs[]`), replayed with `inputs` (the
// cell's workload, SLO and models) on `deployment`. `records_path`, when not
// empty, gets the simulated requests as JSONL (bench::record_to_json plus
// "trial"), beside the sweep's own WORKLOAD.requests.jsonl.gz.
Result<std::vector<TrialComparison>> replay_trials(const Json& result_doc, const PlanInputs& inputs,
                                                   const DeploymentSpec& deployment,
                                                   const std::string& records_path = "");

}  // namespace baton::planner
