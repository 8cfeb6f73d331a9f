#include "deploy/sampled_run.h"

#include <utility>

namespace baton::deploy {

Result<SampledRun> run_sampled(const bench::BenchConfig& config, std::optional<double> rate,
                               const std::vector<SampleTarget>& targets, const MetricsSamplerOptions& options,
                               const std::function<void(const std::string&)>& warn) {
  SampledRun out;
  if (targets.empty()) {
    BATON_ASSIGN_OR_RETURN(out.report, bench::run_benchmark(config, rate));
    return out;
  }
  MetricsSampler sampler(targets, options);
  if (Status st = sampler.start(); !st.is_ok() && warn) warn("instances not sampled: " + st.message());
  auto report = bench::run_benchmark(config, rate);
  out.loads = sampler.stop();
  BATON_ASSIGN_OR_RETURN(out.report, std::move(report));
  return out;
}

}  // namespace baton::deploy
