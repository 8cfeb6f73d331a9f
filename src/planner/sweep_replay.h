// A recorded sweep's search, run again on the simulator as the sweep ran it:
// the bench's own search (bench::search_max_rate) with the options the sweep
// recorded (start rate, precision, trials, close margin), trial k seeded by
// the sweep's rule (bench::trial_seed(bench::series_seed(seed, workload), k)),
// and the deployment's processes carried from trial to trial: they start
// cold and keep the shapes they met (engine_warmup.h), as the sweep's
// processes did, across the workloads that shared them. Only the sweep's
// settings enter it; its outcome (which trials passed) is what is predicted.
#pragma once

#include <string>
#include <vector>

#include "bench/rate_search.h"
#include "common/json.h"
#include "common/status.h"
#include "planner/engine_warmup.h"
#include "planner/planner.h"

namespace baton::planner {

// The processes one deployment ran a sweep's cells on. Cells whose results
// record the same process start (their first supervisor event) ran on the
// same processes, one after the other (by finished_utc).
struct SweptProcesses {
  std::string started;                 // the first supervisor event of the cells served so far
  std::vector<EngineWarmth> searched;  // per instance, as the simulated searches left them
  std::vector<EngineWarmth> replayed;  // per instance, as the replayed measured trials left them
};

// The search options a sweep result recorded (config.sweep.search).
Result<bench::SearchOptions> recorded_search_options(const Json& result_doc);

// The sweep's search over simulated trials. `inputs.first_use` prices first
// uses; `warmth` (per instance) is where the processes start and is left as
// the search leaves them.
Result<bench::SearchResult> search_as_swept(const Json& result_doc, const PlanInputs& inputs,
                                            const DeploymentSpec& deployment, std::vector<EngineWarmth>* warmth);

}  // namespace baton::planner
