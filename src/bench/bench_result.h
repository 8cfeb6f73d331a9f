// The result of one `baton bench` invocation (one deployment, one or many
// rates) and its files: summary JSON, per-request JSONL, CSV, HTML report.
// The summary JSON is also what `baton bench compare` reads back.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bench/bench_run.h"
#include "bench/rate_search.h"
#include "common/json.h"

namespace baton::bench {

inline constexpr const char* kResultFormat = "baton-bench-result/1";

struct BenchOutcome {
  std::string label;
  Json config = Json::object();  // the command's settings, for the record
  SloSpec slo;
  std::vector<RunReport> runs;  // every run (search trials in order)
  std::optional<SearchResult> search;
};

// The highest sustainable rate as requested: the search's answer, or a single
// run's rate when an SLO was given and held; nullopt otherwise.
std::optional<double> max_sustainable_rps(const BenchOutcome& outcome);
// The rate the server was offered by the sustainable runs at `requested_rate`
// (their median): what a report leads with.
std::optional<double> offered_rps_at(const BenchOutcome& outcome, double requested_rate);

// The summary document (no per-request records; CDF points of the
// distribution run: the highest sustainable run, else the last that was not
// stopped early, else the last).
Json result_document(const BenchOutcome& outcome);

// One CSV row per run (header first).
std::string runs_csv(const std::vector<Json>& documents);

// Writes DIR/summary.json, DIR/requests.jsonl, DIR/runs.csv, DIR/report.html.
Status write_outputs(const BenchOutcome& outcome, const std::string& dir);

// Human-readable summary of a run for the terminal.
std::string format_run(const RunReport& run);

// Comparison of several result documents: max sustainable QPS of each and its
// ratio to the baseline's.
struct CompareRow {
  std::string label;
  std::optional<double> max_rps;
  std::optional<double> ratio;
};
Result<std::vector<CompareRow>> compare_results(const std::vector<Json>& documents, const std::string& baseline);
std::string format_compare(const std::vector<CompareRow>& rows, const std::string& baseline);
Result<Json> load_result(const std::string& path);

}  // namespace baton::bench
