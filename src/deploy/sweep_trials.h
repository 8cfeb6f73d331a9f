// The trials of one `baton sweep` search as kept on disk: one JSON record per
// trial (verdict, summary, CDFs, per-request records), appended to the
// search's partial file as it goes and folded into the result document when
// it ends (sweep.h describes the files).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "bench/bench_result.h"
#include "bench/bench_run.h"
#include "common/json.h"
#include "common/status.h"

namespace baton::deploy {

// Writes `data` to a temporary file beside `path`, then renames it over `path`.
Status write_atomically(const std::string& path, const std::string& data);

// One trial as kept on disk: its verdict, its summary (RunReport::to_json), the
// CDFs of its distributions and its per-request records (no ITL arrays).
Json trial_entry(size_t index, double rate, bench::RunReport rep, const bench::SloSpec& slo);

// The search's view of a kept trial.
bench::TrialOutcome trial_of(const Json& entry);

// The result document of a finished search over `entries` (bench_result.h's
// format; the distribution run is the highest sustainable trial, else the last).
Json document_of(const bench::BenchOutcome& head, const std::vector<Json>& entries);

Status append_partial(const std::string& path, const Json& entry);
Status write_partial(const std::string& path, const std::vector<Json>& entries);

}  // namespace baton::deploy
