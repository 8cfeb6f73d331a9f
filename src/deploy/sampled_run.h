// One benchmark trial with the deployment watched from outside: the
// instances' /metrics are sampled while it runs (MetricsSampler), and their
// loads come back with the trial's report. `baton bench --watch` and
// `baton sweep` plug it into the trial engine (bench/trial_engine.h) as its
// run hook.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_run.h"
#include "deploy/metrics_sampler.h"

namespace baton::deploy {

struct SampledRun {
  bench::RunReport report;
  std::vector<InstanceLoad> loads;  // in target order; empty when none watched
};

// Runs the trial with `targets` sampled (none: just runs it). A sampler that
// cannot start costs the trial only its timeline: `warn` hears why.
Result<SampledRun> run_sampled(const bench::BenchConfig& config, std::optional<double> rate,
                               const std::vector<SampleTarget>& targets, const MetricsSamplerOptions& options,
                               const std::function<void(const std::string&)>& warn);

}  // namespace baton::deploy
