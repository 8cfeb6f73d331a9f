// `baton plan --validate RESULTS_DIR`: the planner's prediction against what
// a recorded sweep measured, cell by cell. A sweep's results folder holds one
// document per deployment x workload (results/DEPLOYMENT/WORKLOAD.json,
// written by `baton sweep`), each recording the deployment spec, the workload
// settings, the SLO, the cards it ran on and the search's outcome; the
// profiles of those cards (`baton profile` JSON) sit beside them in
// profiles/. Each cell is simulated with the profile of its own card and the
// settings the sweep recorded, and its predicted max sustainable rate is set
// against the measured one. Nothing of the measured outcome enters the
// prediction (docs/planner.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/rate_search.h"
#include "common/json.h"
#include "common/status.h"
#include "model/model_config.h"
#include "planner/trial_replay.h"

namespace baton::planner {

struct ValidationOptions {
  std::string results_dir;   // a `baton sweep --out` folder (results/ under it)
  std::string profiles_dir;  // empty: RESULTS_DIR/profiles
  // The card's memory in GiB, for the KV capacity of an instance (weights
  // and gpu-memory-utilization from the profile and the deployment); a
  // profile that records gpu_memory_bytes overrides it for its card.
  double gpu_memory_gib = 0;
  double transfer_gbps = 50;  // KV pulls between PD instances
  double transfer_latency_s = 0.001;
  // A `baton bench-transfer` JSON: when set, each PD cell's pulls are
  // fitted from its rows of the cell's kv_transport (transfer_fit.h)
  // instead of the two numbers above.
  std::string transfer_results;
  double router_hop_s = 0.0005;
  double rate_precision = 0.02;  // the simulated search's bisection width
  double max_rate = 10000;       // its ceiling (req/s or sessions/s), the same for every cell
  // Diagnosis: replay each measured trial in the simulator (trial_replay.h)
  // and, when records_dir is set, write its simulated requests to
  // records_dir/DEPLOYMENT/WORKLOAD.sim.requests.jsonl.
  bool compare_trials = false;
  std::string records_dir;
  // Predict as the sweep ran (sweep_replay.h): its own search over simulated
  // trials, on processes that start cold (engine_warmup.h) and keep what
  // they meet. Off: the planner's own search, warm (steady state).
  bool as_swept = true;
};

struct ValidationCell {
  std::string deployment, workload, card;
  double measured_rps = 0;         // the highest rate the sweep found sustainable
  double measured_failed_rps = 0;  // the lowest it found broken (0: none)
  std::string measured_broke_first;
  double predicted_rps = 0;
  std::string predicted_broke_first;
  // The steady state (the planner's search, warm processes): what `baton
  // plan` predicts. With as_swept, predicted_rps is the sweep's search run
  // again on the simulator, cold processes and all, and its trials are kept.
  double predicted_warm_rps = 0;
  bool as_swept = false;                      // predicted_rps is the sweep's search run again (else the steady state)
  std::vector<bench::TrialOutcome> searched;  // as_swept: the simulated search's trials, in order
  double first_use_s = 0;                     // as_swept: what first uses cost its instances, in all
  // The same prediction with every step 1 + e and 1 - e times as long, e the
  // step-time fit's RMS relative error (the plan's band), and whether the
  // measured rate lies between them.
  double predicted_low_rps = 0, predicted_high_rps = 0;
  bool measured_in_band = false;
  double rel_error = 0;  // (predicted - measured) / measured
  // The sweep knows the capacity only to its precision: between the rate that
  // passed and the one that failed. A prediction in [measured, failed) is as
  // right as the measurement can tell.
  bool in_measured_bracket = false;
  std::vector<TrialComparison> trials;  // with compare_trials: each measured trial, replayed
  std::string skipped;                  // why the cell has no prediction; empty when it has one
  bool predicted() const { return skipped.empty(); }
  Json to_json() const;
};

// Per workload whose every cell was predicted: the deployment the plan would
// recommend and how it measured against the measured best.
struct ValidationWorkload {
  std::string workload;
  std::string measured_best;   // highest measured rate
  std::string predicted_best;  // highest predicted rate
  double predicted_best_measured_rps = 0;
  double measured_best_rps = 0;
  bool within_5pct = false;  // the predicted best measured within 5% of the best
  Json to_json() const;
};

struct Validation {
  std::vector<ValidationCell> cells;  // by workload, then deployment
  std::vector<ValidationWorkload> workloads;
  size_t num_predicted = 0;
  size_t num_in_bracket = 0;
  size_t num_in_band = 0;  // cells whose measured rate is inside the prediction's band
  // With compare_trials: the measured trials replayed, and how many of them
  // the simulation judged as the measurement did (PASS or FAIL).
  size_t num_trials = 0, num_trial_verdicts_agree = 0;
  double median_abs_rel_error = 0;  // over the predicted cells
  double max_abs_rel_error = 0;
  Json to_json() const;
};

Result<Validation> validate_results(const ValidationOptions& options);

// Bytes of KV one token holds over all layers, in the model's dtype: K and V
// per KV head, or one latent row for multi-head latent attention.
int64_t kv_bytes_per_token(const ModelConfig& config);

}  // namespace baton::planner
