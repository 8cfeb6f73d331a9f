// The one trial engine of `baton bench` (one rate, --sweep, --search) and
// `baton sweep`: it runs benchmark trials one after the other, seeds each by
// one rule, and drives the rate search (rate_search.h) over them.
//
// Seed rule: trial k of a series whose base seed is S draws its prompts,
// lengths and arrivals from trial_seed(S, k) = S + k * 0x9e3779b97f4a7c15
// (trial 0 uses S itself). Each trial thus sends fresh prompts: reusing one
// seed would let a trial hit the prefix cache that the trials before it
// filled, and the series stays deterministic (a resumed sweep replays it).
//
//   TrialHooks hooks;  // all optional
//   hooks.after = [&](size_t k, std::optional<double> rate, RunReport r) { ...; return r.to_trial(); };
//   TrialEngine engine(config, seed, hooks);
//   auto one = engine.run_trial();          // at the config's own rate
//   auto res = engine.search(options);      // max sustainable rate
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_run.h"
#include "bench/rate_search.h"

namespace baton::bench {

uint64_t trial_seed(uint64_t base_seed, size_t trial_index);
// The base seed of a sweep's series for one workload: the sweep's seed mixed
// with the workload's name (FNV-1a), so that two workloads of one seed send
// different prompts. `baton plan --validate` replays a trial by it.
uint64_t series_seed(uint64_t sweep_seed, const std::string& workload_name);

struct TrialHooks {
  // Before trial `index` at `rate`: an outcome to take instead of running it
  // (a replay from disk), nullopt to run it, or an error that ends the series
  // (interrupted, the deployment went down). Default: run every trial.
  std::function<Result<std::optional<TrialOutcome>>(size_t index, std::optional<double> rate)> before;
  // Runs one trial's benchmark; a wrapper samples the instances around it.
  // Default: run_benchmark.
  std::function<Result<RunReport>(const BenchConfig& config, std::optional<double> rate, size_t index)> run;
  // After trial `index` ran at `rate`: its report, to print, keep or write; returns its
  // outcome. Default: report.to_trial().
  std::function<Result<TrialOutcome>(size_t index, std::optional<double> rate, RunReport report)> after;
};

class TrialEngine {
 public:
  TrialEngine(BenchConfig config, uint64_t base_seed, TrialHooks hooks = {});

  // One trial at `rate` (nullopt: the configured arrival rate).
  Result<TrialOutcome> run_trial(std::optional<double> rate = std::nullopt);
  // One trial at each rate, in order; stops at the first error.
  Result<std::vector<TrialOutcome>> run_rates(const std::vector<double>& rates);
  // The maximum sustainable rate (rate_search.h), one trial per probe.
  Result<SearchResult> search(const SearchOptions& options);

  // The config trial `index` runs with: the base config, seeded by the rule.
  BenchConfig config_for(size_t index) const;
  size_t num_trials() const { return num_trials_; }

 private:
  BenchConfig config_;
  uint64_t base_seed_;
  TrialHooks hooks_;
  size_t num_trials_ = 0;
};

}  // namespace baton::bench
