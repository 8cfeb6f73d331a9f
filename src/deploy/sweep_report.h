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
  bool applies = true;                   // the experiment runs this pair
  bool present = false;                  // its result is on disk
  std::optional<double> max_rps;         // nullopt: no rate passed
  std::optional<double> min_failed_rps;  // nullopt: no rate failed (every rate passed)
  std::string broke_first;
  std::optional<double> ratio;  // max_rps / baseline's, when both ran on the same cards
  bool converged = false;
  size_t num_trials = 0;
  // Not finished: the trials of its partial file so far (max_rps / min_failed_rps
  // from them); shown, but neither compared nor ranked.
  bool partial = false;
  std::string cards;         // gpu_cards() of the run ("" for none recorded: a CPU run or an older file)
  std::string measured;      // the day it finished (UTC, YYYY-MM-DD), "" when unknown
  bool other_cards = false;  // ran on other cards than the baseline: no ratio
};

struct SweepRow {
  std::string workload;
  std::string slo;
  std::string baseline;             // the experiment's, or for a workload without it, its first deployment
  std::vector<SweepCell> cells;     // in the experiment's deployment order
  std::string best;                 // the deployment with the highest max_rps ("" when none passed; "a = b" for a tie),
                                    // among those on the baseline's cards
  std::string cards;                // the cards of its results: one set, or "mixed: ..." (ratios only within one set)
  std::string measured;             // the days its results finished, "2026-11-27" or "2026-11-27, 2026-11-28"
  std::string rate_unit = "req/s";  // what its rates count (multi-turn: sessions/s)
};

struct SweepComparisonRow {
  std::string name, workload, deployment, against;
  std::optional<double> ratio;  // deployment's max_rps / against's, when both ran on the same cards
  std::string note;             // why there is no ratio ("" when there is one)
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
