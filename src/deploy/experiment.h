// An experiment for `baton sweep EXPERIMENT.yaml`: several deployments, each
// driven with several workloads until its SLA breaks.
//
//   name: pd-vs-agg
//   baseline: agg-4gpu            # ratios are to this deployment (default: the first)
//   deployments:
//     - examples/agg-4gpu.yaml    # a DeploySpec file (its `name` labels it) ...
//     - {path: examples/pd-2p2d.yaml, name: pd-2p2d, workloads: [long-in]}  # ... renamed, restricted
//     - {name: agg-1, spec: {mode: agg, replicas: 1}}                       # ... or inline
//   workloads:
//     - name: long-in             # letters, digits, '.', '_', '-'
//       kind: random              # random | prefix | multiturn | trace
//       input_len: 8192           # N or MIN:MAX
//       output_len: 256
//       slo: "ttft:p90<2s,tpot:p90<50ms"   # the bench's --slo syntax
//       attainment: 0             # optional minimum fraction of good requests
//       # also: num_requests (default 200), duration_s, arrival, burstiness, prefix_groups,
//       # prefix_hit_rate, turns, think_time_s, trace, trace_format, time_scale,
//       # prompt_format, vocab_size, max_concurrency, and any search field below.
//       # The workload keys are bench's option schema (bench/workload_schema.h,
//       # docs/bench.md): the same options, defaults and rules as `baton bench`.
//   search: {start_rate: 1, precision: 0.1, num_requests: 200, warmup: 10, seed: 0,
//            max_trials: 16, max_rate: 1000, min_rate: 0.01, close_margin: 0.05}
//   load: {threads: 2, timeout_s: 600, max_concurrency: 0}
//   comparisons:                  # extra ratios for the table, per workload where both ran
//     - {name: tcp-vs-cuda_ipc, deployment: pd-2p2d-tcp, against: pd-2p2d}
//
// Relative paths (deployment files, traces) are looked up from the current
// folder first, then from the experiment file's folder.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_run.h"
#include "bench/rate_search.h"
#include "common/status.h"
#include "deploy/deploy_spec.h"

namespace baton::deploy {

struct ExperimentDeployment {
  std::string name;    // the label in results and reports
  std::string source;  // the spec file, or "inline"
  DeploySpec spec;
  std::vector<std::string> workloads;  // empty: every workload
};

struct ExperimentWorkload {
  std::string name;
  bench::WorkloadOptions options;  // arrival.rate is set by the search
  std::string slo_text;
  bench::SloSpec slo;
  bench::SearchOptions search;
  bool start_rate_given = false;  // trace: otherwise the search starts at its time-scaled rate
  // Per-deployment start rates (`start_rates: {pd-1p3d: 4}`): where a
  // deployment's limit is known to lie elsewhere, its search starts there.
  std::map<std::string, double> start_rates;
  size_t num_warmup = 0;
  double warmup_s = 0;  // requests (sessions) starting before this are not measured either
  size_t max_concurrency = 0;
  std::vector<std::string> deployments;  // empty: every deployment
  Json describe;                         // the settings as written, for the record
};

struct ExperimentComparison {
  std::string name;
  std::string deployment;
  std::string against;
};

struct Experiment {
  std::string name = "experiment";
  std::string baseline;  // a deployment name
  std::vector<ExperimentDeployment> deployments;
  std::vector<ExperimentWorkload> workloads;
  std::vector<ExperimentComparison> comparisons;
  int num_threads = 2;
  double request_timeout_s = 600;
  std::string source_text;  // the YAML as read

  static Result<Experiment> parse_yaml(const std::string& text, const std::string& base_dir = "");
  static Result<Experiment> load(const std::string& path);

  // Whether `deployment` runs `workload` (both restrictions allow it).
  bool runs(const ExperimentDeployment& deployment, const ExperimentWorkload& workload) const;
  const ExperimentDeployment* find_deployment(const std::string& name) const;
};

// The search of a workload as run on `deployment` (empty: none in
// particular): its start_rates entry for the deployment if any; else a trace
// without its own start_rate starts at its natural rate under its time_scale
// (reads the trace).
Result<bench::SearchOptions> effective_search(const ExperimentWorkload& workload, const std::string& deployment = "");

// A name usable as a file name: [A-Za-z0-9._-]+, not "." or "..".
Status check_result_name(const std::string& name, const std::string& what);

}  // namespace baton::deploy
