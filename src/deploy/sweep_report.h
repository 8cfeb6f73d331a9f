// The sweep's comparison, rebuilt from the result files on disk (so a sweep
// run in parts, or only resumed, gives the same table):
//   table.json  max sustainable QPS per workload x deployment, ratio to the
//               baseline, best deployment per workload, the SLO target that
//               broke first, the experiment's extra comparisons
//   table.md    the same as Markdown
//   report.html one self-contained page: the table, then per workload the
//               bench's HTML report across deployments (TTFT/TPOT/E2E vs
//               offered QPS, max sustainable QPS bars, CDFs)
//   workloads/WORKLOAD.html  each workload's page of report.html on its own
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "deploy/experiment.h"

namespace baton::deploy {

struct SweepCell {
  std::string deployment;
  bool applies = true;    // the experiment runs this pair
  bool present = false;   // its result is on disk
  std::optional<double> max_rps;         // nullopt: no rate passed
  std::optional<double> min_failed_rps;  // nullopt: no rate failed (every rate passed)
  std::string broke_first;
  std::optional<double> ratio;           // max_rps / baseline's
  bool converged = false;
  size_t num_trials = 0;
};

struct SweepRow {
  std::string workload;
  std::string slo;
  std::string baseline;   // the experiment's, or for a workload without it, its first deployment
  std::vector<SweepCell> cells;  // in the experiment's deployment order
  std::string best;       // the deployment with the highest max_rps ("" when none passed; "a = b" for a tie)
};

struct SweepComparisonRow {
  std::string name, workload, deployment, against;
  std::optional<double> ratio;  // deployment's max_rps / against's
};

struct SweepTable {
  std::string experiment;
  std::string baseline;
  std::vector<std::string> deployments;
  std::vector<SweepRow> rows;
  std::vector<SweepComparisonRow> comparisons;
  size_t num_missing = 0;  // pairs the experiment runs whose result is not on disk yet
  Json to_json() const;
  std::string to_markdown() const;
};

// Loads every result of the experiment under out_dir; `docs` (optional) gets,
// per workload (experiment order), the result documents present.
Result<SweepTable> build_sweep_table(const Experiment& experiment, const std::string& out_dir,
                                     std::vector<std::vector<Json>>* docs = nullptr);

// Writes table.json, table.md, report.html and workloads/*.html under out_dir.
Result<SweepTable> write_sweep_report(const Experiment& experiment, const std::string& out_dir);

}  // namespace baton::deploy
