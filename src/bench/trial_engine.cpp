#include "bench/trial_engine.h"

#include <utility>

namespace baton::bench {

uint64_t trial_seed(uint64_t base_seed, size_t trial_index) {
  return base_seed + static_cast<uint64_t>(trial_index) * 0x9e3779b97f4a7c15ULL;
}

uint64_t series_seed(uint64_t sweep_seed, const std::string& workload_name) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : workload_name) h = (h ^ c) * 1099511628211ULL;
  return sweep_seed ^ h;
}

TrialEngine::TrialEngine(BenchConfig config, uint64_t base_seed, TrialHooks hooks)
    : config_(std::move(config)), base_seed_(base_seed), hooks_(std::move(hooks)) {}

BenchConfig TrialEngine::config_for(size_t index) const {
  BenchConfig c = config_;
  c.workload.seed = trial_seed(base_seed_, index);
  c.workload.arrival.seed = c.workload.seed;
  return c;
}

Result<TrialOutcome> TrialEngine::run_trial(std::optional<double> rate) {
  const size_t index = num_trials_;
  if (hooks_.before) {
    BATON_ASSIGN_OR_RETURN(std::optional<TrialOutcome> replayed, hooks_.before(index, rate));
    if (replayed) {
      ++num_trials_;
      return std::move(*replayed);
    }
  }
  const BenchConfig config = config_for(index);
  Result<RunReport> report = hooks_.run ? hooks_.run(config, rate, index) : run_benchmark(config, rate);
  if (!report.is_ok()) return report.status();
  ++num_trials_;
  if (hooks_.after) return hooks_.after(index, rate, std::move(*report));
  return report->to_trial();
}

Result<std::vector<TrialOutcome>> TrialEngine::run_rates(const std::vector<double>& rates) {
  std::vector<TrialOutcome> out;
  for (double rate : rates) {
    BATON_ASSIGN_OR_RETURN(auto t, run_trial(rate));
    out.push_back(std::move(t));
  }
  return out;
}

Result<SearchResult> TrialEngine::search(const SearchOptions& options) {
  auto trial = [this](double rate) { return run_trial(rate); };
  return search_max_rate(trial, options);
}

}  // namespace baton::bench
