// `baton bench --watch`: while each run goes, scrape the /metrics of the
// instances behind the endpoint (deploy::run_sampled), print their peaks
// after the run and, with --out, append their timeline to OUT/metrics.jsonl.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bench/bench_run.h"
#include "common/status.h"
#include "deploy/metrics_sampler.h"

namespace baton::cli {

// "prefill-0=http://127.0.0.1:8100,router=http://127.0.0.1:8000" or bare
// URLs (named by host:port). A name's prefix (prefill, decode, agg, router)
// gives its role; otherwise "instance".
Result<std::vector<deploy::SampleTarget>> parse_watch_targets(const std::string& list);

struct WatchedRun {
  bench::RunReport report;
  std::string instances;  // the instances' peaks, for after the run's report ("" when none watched)
};

// Runs one benchmark with the targets sampled (none: just runs it).
Result<WatchedRun> run_watched(const bench::BenchConfig& config, std::optional<double> rate,
                               const std::vector<deploy::SampleTarget>& targets, const std::string& out_dir,
                               size_t run_index);

}  // namespace baton::cli
