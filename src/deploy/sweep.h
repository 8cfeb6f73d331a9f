// `baton sweep`: for each deployment of an experiment, bring it up
// (Supervisor), search the max sustainable rate of each workload against its
// router under the workload's SLO, save each result, tear it down, go on.
//
// Files under the output folder:
//   results/DEPLOYMENT/WORKLOAD.json            the bench result document (every trial's summary)
//   results/DEPLOYMENT/WORKLOAD.requests.jsonl  one line per request of every trial (no ITL arrays)
//   results/DEPLOYMENT/WORKLOAD.partial.jsonl   the trials of a search not finished yet (one line each)
//   logs/DEPLOYMENT/                            the processes' logs and each search's full printout
//   experiment.yaml, table.md, table.json, report.html (sweep_report.h)
// A result is written only when its search finished (atomically: temp file,
// then rename). With `resume`, a result already on disk is not run again, a
// deployment whose results are all on disk is not brought up, and a search
// stopped part-way (signal, time budget) replays its trials from the partial
// file (the search is deterministic given its trials' verdicts) and goes on
// from there.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "deploy/experiment.h"

namespace baton::deploy {

struct SweepOptions {
  std::string out_dir;
  bool resume = false;
  std::string baton_binary;                           // for `baton serve` / `baton proxy`
  std::vector<std::string> only_deployments;          // empty: all
  std::vector<std::string> only_workloads;            // empty: all
  const std::atomic<bool>* stop_requested = nullptr;  // checked between trials
  double time_budget_s = 0;                     // > 0: start no trial after this long (the sweep stops as on a signal)
  std::function<void(const std::string&)> log;  // progress lines for the user
};

struct SweepSummary {
  int num_run = 0;                    // results searched and written now
  int num_skipped = 0;                // results found on disk (resume)
  std::vector<std::string> failures;  // "DEPLOYMENT/WORKLOAD: why"
  bool interrupted = false;
};

std::string result_path(const std::string& out_dir, const std::string& deployment, const std::string& workload);
std::string requests_path(const std::string& out_dir, const std::string& deployment, const std::string& workload);
std::string partial_path(const std::string& out_dir, const std::string& deployment, const std::string& workload);

// The trials of an unfinished search (its partial file), one record each.
Result<std::vector<Json>> read_partial_trials(const std::string& path);

// The cards a result ran on, from its `gpus` list ({instance, gpu, name}):
// "4x NVIDIA H100 80GB HBM3", "2x A + 2x B"; "" for none (a CPU deployment,
// or a record that predates the list).
std::string gpu_cards(const Json& gpus);

// Whether a valid result document for the pair is on disk.
bool result_on_disk(const std::string& out_dir, const std::string& deployment, const std::string& workload);

// Runs what is missing. Returns an error only for what stops the whole sweep
// before anything runs (bad filters, results present without `resume`);
// a deployment that fails to come up or a search that fails is recorded in
// the summary and the sweep goes on.
Result<SweepSummary> run_sweep(const Experiment& experiment, const SweepOptions& options);

}  // namespace baton::deploy
