#include "deploy/sweep_trials.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "deploy/sweep.h"

namespace baton::deploy {

namespace fs = std::filesystem;

Status write_atomically(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp";
  BATON_RETURN_IF_ERROR(write_file(tmp, data));
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return unavailable("cannot move '{}' to '{}': {}", tmp, path, ec.message());
  return Status::ok();
}

// One trial as kept on disk: its verdict, its summary (RunReport::to_json), the
// CDFs of its distributions and its per-request records (no ITL arrays).
Json trial_entry(size_t index, double rate, bench::RunReport rep, const bench::SloSpec& slo) {
  bench::TrialOutcome t = rep.to_trial();
  Json requests = Json::array();
  for (const auto& rec : rep.load.records) {
    Json j = bench::record_to_json(rec);
    j.erase("itl_ms");  // every gap of every request would dwarf the rest; TPOT and E2E stay
    j["trial"] = index;
    j["target_rate_rps"] = rep.target_rate;
    requests.push_back(std::move(j));
  }
  bench::BenchOutcome one;
  one.slo = slo;
  one.runs.push_back(std::move(rep));
  Json doc = bench::result_document(one);
  return Json{{"rate", rate},
              {"sustainable", t.sustainable},
              {"worst_ratio", std::isfinite(t.worst_ratio) ? Json(t.worst_ratio) : Json(nullptr)},
              {"first_broken", t.first_broken},
              {"run", t.summary},
              {"cdf", doc.value("cdf", Json::object())},
              {"requests", std::move(requests)}};
}

bench::TrialOutcome trial_of(const Json& entry) {
  bench::TrialOutcome t;
  t.rate = entry.value("rate", 0.0);
  t.sustainable = entry.value("sustainable", false);
  const Json& wr = entry.contains("worst_ratio") ? entry["worst_ratio"] : Json();
  t.worst_ratio = wr.is_number() ? wr.get<double>() : std::numeric_limits<double>::infinity();
  t.first_broken = entry.value("first_broken", "");
  t.summary = entry.value("run", Json::object());
  return t;
}

// The result document of a finished search over `entries` (bench_result.h's
// format; the distribution run is the highest sustainable trial, else the last).
Json document_of(const bench::BenchOutcome& head, const std::vector<Json>& entries) {
  Json doc = bench::result_document(head);  // head carries no runs: filled in here
  Json runs = Json::array();
  size_t best = entries.empty() ? 0 : entries.size() - 1;
  double best_rate = -1;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Json& run = entries[i]["run"];
    runs.push_back(run);
    double rate = run.value("target_rate_rps", 0.0);
    if (entries[i].value("sustainable", false) && rate > best_rate) {
      best = i;
      best_rate = rate;
    }
  }
  doc["runs"] = runs;
  if (!entries.empty()) {
    doc["distribution_run"] = best;
    doc["cdf"] = entries[best].value("cdf", Json::object());
  }
  return doc;
}

Status append_partial(const std::string& path, const Json& entry) {
  std::ofstream f(path, std::ios::app);
  f << entry.dump() << '\n';
  f.flush();
  if (!f) return unavailable("cannot append to '{}'", path);
  return Status::ok();
}

Status write_partial(const std::string& path, const std::vector<Json>& entries) {
  std::string text;
  for (const auto& e : entries) text += e.dump() + "\n";
  return write_atomically(path, text);
}

Result<std::vector<Json>> read_partial_trials(const std::string& path) {
  BATON_ASSIGN_OR_RETURN(std::string text, read_file(path));
  std::vector<Json> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) break;  // a line cut short by a crash: dropped, that trial runs again
    auto j = parse_json(std::string_view(text).substr(start, nl - start), path);
    if (!j.is_ok() || !j->is_object() || !j->contains("rate") || !j->contains("run")) {
      return data_loss("'{}' line {} is not a trial record; delete the file to run this search again", path,
                       out.size() + 1);
    }
    out.push_back(std::move(*j));
    start = nl + 1;
  }
  return out;
}

}  // namespace baton::deploy
