// The search for the maximum sustainable request rate. A trial runs the
// workload at one rate and says whether every SLO target held. The search:
//   1. brackets: from start_rate, doubles while trials pass (or halves while
//      they fail) until one rate passed and the next failed;
//   2. bisects between the highest passed and the lowest failed rate until
//      (failed - passed) / passed <= precision;
//   3. a trial whose worst target is within close_margin of its limit (value /
//      limit in [1 - m, 1 + m]) is run twice more and decided by majority.
// It reports the highest rate that passed, the lowest that failed, and the
// target that broke first (the worst one at the lowest failed rate).
#pragma once

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "common/json.h"

namespace baton::bench {

struct TrialOutcome {
  double rate = 0;  // the target rate
  bool sustainable = false;
  double worst_ratio = 0;      // max over targets of value / limit (> 1 broke)
  std::string first_broken;    // "" when sustainable
  Json summary;                // whatever the trial wants to keep (metrics, SLO report)
  bool stopped_early = false;  // stopped once its FAIL was certain: worst_ratio is inf, not a measurement
};

using TrialFn = std::function<Result<TrialOutcome>(double rate)>;

struct SearchOptions {
  double start_rate = 1.0;
  double precision = 0.05;  // relative width of the final bracket
  double min_rate = 1e-3;
  double max_rate = 1e5;
  double close_margin = 0.05;
  int max_trials = 40;
};

struct SearchResult {
  double max_passed_rate = 0;                                        // 0: no rate passed
  double min_failed_rate = std::numeric_limits<double>::infinity();  // inf: none failed
  std::string broke_first;
  std::vector<TrialOutcome> trials;  // every trial run, in order (repeats included)
  bool converged = false;
  std::string note;  // why it stopped, when it did not converge
  Json to_json() const;
};

// "PASS (worst target at 0.84x its limit)", "FAIL (stopped early, the verdict certain, broke: ...)":
// a trial's verdict and why, never an infinite ratio.
std::string trial_verdict(const TrialOutcome& t);

Status validate(const SearchOptions& options);
Result<SearchResult> search_max_rate(const TrialFn& trial, const SearchOptions& options);

}  // namespace baton::bench
