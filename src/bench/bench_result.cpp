#include "bench/bench_result.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>

#include "bench/html_report.h"
#include "bench/workload.h"
#include "common/clock.h"

namespace baton::bench {

namespace {

Json cdf_points(const Distribution& d, size_t num_points = 200) {
  Json pts = Json::array();
  if (d.sorted.empty()) return pts;
  for (size_t k = 0; k < num_points; ++k) {
    double q = static_cast<double>(k) / static_cast<double>(num_points - 1) * 100.0;
    pts.push_back({percentile_sorted(d.sorted, q) * 1e3, q / 100.0});
  }
  return pts;
}

// The run the CDFs show: the highest sustainable one, else the last that ran to its end (a run
// stopped early lost its slowest requests), else the last.
size_t distribution_run(const BenchOutcome& o) {
  size_t best = o.runs.size() - 1;
  for (size_t i = o.runs.size(); i-- > 0;) {
    if (!o.runs[i].slo.stopped_early) {
      best = i;
      break;
    }
  }
  double best_rate = -1;
  for (size_t i = 0; i < o.runs.size(); ++i) {
    if (o.runs[i].slo.sustainable && !o.slo.empty() && o.runs[i].target_rate > best_rate) {
      best = i;
      best_rate = o.runs[i].target_rate;
    }
  }
  return best;
}

std::string csv_num(const Json& v) {
  if (v.is_number()) return fmt::format("{:.6g}", v.get<double>());
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return "";
}

std::string csv_text(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::optional<double> offered_rps_at(const BenchOutcome& o, double requested_rate) {
  std::vector<double> offered;
  for (const auto& r : o.runs) {
    if (r.target_rate == requested_rate && r.slo.sustainable && r.metrics.offered_rate > 0) {
      offered.push_back(r.metrics.offered_rate);
    }
  }
  if (offered.empty()) return std::nullopt;
  std::sort(offered.begin(), offered.end());
  return offered[(offered.size() - 1) / 2];
}

std::optional<double> max_sustainable_rps(const BenchOutcome& o) {
  if (o.search) {
    if (o.search->max_passed_rate > 0) return o.search->max_passed_rate;
    return std::nullopt;
  }
  if (o.slo.empty() || o.runs.empty()) return std::nullopt;
  std::optional<double> best;
  for (const auto& r : o.runs) {
    if (r.slo.sustainable && (!best || r.target_rate > *best)) best = r.target_rate;
  }
  return best;
}

Json result_document(const BenchOutcome& o) {
  Json doc;
  doc["format"] = kResultFormat;
  doc["label"] = o.label;
  doc["created_unix_ms"] = wall_ms();
  doc["config"] = o.config;
  doc["metric_definitions"] = metric_definitions();
  Json slo = Json::array();
  for (const auto& t : o.slo.targets) {
    slo.push_back(
        {{"target", t.text}, {"metric", t.metric}, {"statistic", t.statistic}, {"limit_ms", t.limit_s * 1e3}});
  }
  doc["slo"] = slo;
  doc["slo_min_attainment"] = o.slo.min_attainment;
  auto best = max_sustainable_rps(o);
  doc["max_sustainable_rps"] = best ? Json(*best) : Json(nullptr);
  std::optional<double> best_offered = best ? offered_rps_at(o, *best) : std::nullopt;
  doc["max_sustainable_offered_rps"] = best_offered ? Json(*best_offered) : Json(nullptr);
  doc["search"] = o.search ? o.search->to_json() : Json(nullptr);
  Json runs = Json::array();
  for (const auto& r : o.runs) runs.push_back(r.to_json());
  doc["runs"] = runs;
  if (!o.runs.empty()) {
    size_t d = distribution_run(o);
    doc["distribution_run"] = d;
    const auto& m = o.runs[d].metrics;
    doc["cdf"] = {
        {"ttft_ms", cdf_points(m.ttft_s)}, {"tpot_ms", cdf_points(m.tpot_s)}, {"e2e_ms", cdf_points(m.e2e_s)}};
  }
  return doc;
}

std::string runs_csv(const std::vector<Json>& docs) {
  std::string out =
      "label,run,target_rate_rps,offered_rate_rps,num_requests,num_ok,num_failed,num_cancelled,request_throughput_rps,"
      "output_token_throughput_tps,goodput_rps,attainment,sustainable,first_broken,"
      "ttft_mean_ms,ttft_p50_ms,ttft_p90_ms,ttft_p99_ms,tpot_mean_ms,tpot_p50_ms,tpot_p90_ms,tpot_p99_ms,"
      "itl_p50_ms,itl_p90_ms,itl_p99_ms,e2e_mean_ms,e2e_p50_ms,e2e_p90_ms,e2e_p99_ms,"
      "scheduling_delay_p99_ms,client_lag_p99_ms,fell_behind,errors\n";
  for (const auto& doc : docs) {
    const auto& runs = doc.at("runs");
    for (size_t i = 0; i < runs.size(); ++i) {
      const auto& r = runs[i];
      const auto& m = r.at("metrics");
      const auto& s = r.at("slo");
      std::string errors;
      for (auto& [k, v] : m.at("errors_by_kind").items()) {
        errors += fmt::format("{}{}={}", errors.empty() ? "" : ";", k, v.get<size_t>());
      }
      out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{}", csv_text(doc.value("label", "")), i,
                         csv_num(r.at("target_rate_rps")), csv_num(m.at("offered_rate_rps")),
                         csv_num(m.at("num_requests")), csv_num(m.at("num_ok")), csv_num(m.at("num_failed")),
                         csv_num(m.value("num_cancelled", Json())), csv_num(m.at("request_throughput_rps")),
                         csv_num(m.at("output_token_throughput_tps")), csv_num(s.at("goodput_rps")),
                         csv_num(s.at("attainment")), csv_num(s.at("sustainable")),
                         csv_text(s.value("first_broken", "")));
      for (const char* metric : {"ttft_ms", "tpot_ms"}) {
        for (const char* stat : {"mean", "p50", "p90", "p99"}) out += "," + csv_num(m.at(metric).at(stat));
      }
      for (const char* stat : {"p50", "p90", "p99"}) out += "," + csv_num(m.at("itl_ms").at(stat));
      for (const char* stat : {"mean", "p50", "p90", "p99"}) out += "," + csv_num(m.at("e2e_ms").at(stat));
      out += "," + csv_num(m.at("scheduling_delay_ms").at("p99")) + "," + csv_num(m.at("client_lag_ms").at("p99"));
      out += "," + csv_num(r.at("client").at("fell_behind")) + "," + csv_text(errors) + "\n";
    }
  }
  return out;
}

Status write_outputs(const BenchOutcome& o, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return unavailable("cannot create output directory '{}': {}", dir, ec.message());
  Json doc = result_document(o);
  BATON_RETURN_IF_ERROR(write_file(dir + "/summary.json", doc.dump(2) + "\n"));
  {
    std::ofstream f(dir + "/requests.jsonl");
    if (!f) return unavailable("cannot write '{}/requests.jsonl'", dir);
    for (size_t i = 0; i < o.runs.size(); ++i) {
      for (const auto& rec : o.runs[i].load.records) {
        Json j = record_to_json(rec);
        j["run"] = i;
        j["target_rate_rps"] = o.runs[i].target_rate;
        f << j.dump() << '\n';
      }
    }
    if (!f) return unavailable("writing '{}/requests.jsonl' failed", dir);
  }
  BATON_RETURN_IF_ERROR(write_file(dir + "/runs.csv", runs_csv({doc})));
  BATON_RETURN_IF_ERROR(write_file(dir + "/report.html", render_html_report({doc}, "", "baton bench: " + o.label)));
  return Status::ok();
}

namespace {

// A target's measured value for the terminal: never "inf".
std::string target_value_text(const TargetResult& t, const RunReport& r) {
  if (std::isfinite(t.value_s)) return fmt::format("{:10.2f} ms", t.value_s * 1e3);
  return r.metrics.num_ok == 0 ? "(no measured request succeeded)" : "(failed requests put it over any limit)";
}

}  // namespace

std::string format_run(const RunReport& r) {
  const auto& m = r.metrics;
  auto line = [](const char* name, const Distribution& d) {
    if (d.count == 0) return fmt::format("  {:<18} (none)\n", name);
    return fmt::format("  {:<18} mean {:9.2f}  p50 {:9.2f}  p90 {:9.2f}  p95 {:9.2f}  p99 {:9.2f}\n", name,
                       d.mean * 1e3, d.p50 * 1e3, d.p90 * 1e3, d.p95 * 1e3, d.p99 * 1e3);
  };
  const std::string unit = rate_unit(r.workload_describe.is_object() ? r.workload_describe.value("kind", std::string())
                                                                     : "");
  std::string s = fmt::format(
      "offered {} (requested {:.3f} {}): {} requests, {} ok, {} failed{} in {:.2f} s\n"
      "  throughput {:.3f} req/s, {:.1f} output tok/s, {:.1f} total tok/s\n",
      m.offered_rate > 0 ? fmt::format("{:.3f} req/s", m.offered_rate) : std::string("- (under 2 arrivals)"),
      r.target_rate, unit, m.num_requests, m.num_ok, m.num_failed,
      m.num_cancelled ? fmt::format(" (and {} cancelled by the early stop: not counted)", m.num_cancelled) : "",
      m.duration_s, m.request_throughput, m.output_token_throughput, m.total_token_throughput);
  for (const auto& [k, v] : m.errors_by_kind) s += fmt::format("  errors: {} x {}\n", v, k);
  s += "  latency (ms):\n";
  s += line("TTFT", m.ttft_s);
  s += line("TPOT", m.tpot_s);
  s += line("ITL", m.itl_s);
  s += line("E2E", m.e2e_s);
  s += line("TTFT from arrival", m.ttft_from_arrival_s);
  s += line("E2E from arrival", m.e2e_from_arrival_s);
  s += line("scheduling delay", m.scheduling_delay_s);
  if (!r.slo.targets.empty() || r.slo.attainment_ok == false) {
    if (r.slo.stopped_early) {
      s += fmt::format("  SLO: BROKEN ({}), certain before the run ended: stopped early\n    why: {}\n",
                       r.slo.first_broken, r.slo.stop_reason);
      s += fmt::format("    {} request(s) not sent, those in flight cancelled; over the {} that finished:\n",
                       r.load.num_not_sent, m.num_requests);
    } else {
      s += fmt::format("  SLO: {} | attainment {:.1f}% | goodput {:.3f} req/s\n",
                       r.slo.sustainable ? "MET" : "BROKEN (" + r.slo.first_broken + ")", r.slo.attainment * 100,
                       r.slo.goodput_rps);
    }
    for (const auto& t : r.slo.targets) {
      s += fmt::format("    {:<22} measured {}  {}\n", t.target.text, target_value_text(t, r),
                       t.passed ? "ok" : "over the limit");
    }
  }
  if (!r.load.warmup_note.empty()) s += "  note: " + r.load.warmup_note + "\n";
  if (r.load.fell_behind) s += "  note: " + r.load.warning + "\n";
  if (!r.prefix_cache.warning.empty()) s += "  WARNING: " + r.prefix_cache.warning + "\n";
  return s;
}

Result<Json> load_result(const std::string& path) {
  BATON_ASSIGN_OR_RETURN(auto doc, read_json_file(path));
  const auto format = doc.is_object() ? doc.find("format") : doc.end();
  if (!doc.is_object() || format == doc.end() || !format->is_string() || *format != kResultFormat) {
    return invalid_argument("'{}' is not a baton bench result (format '{}' expected)", path, kResultFormat);
  }
  if (!doc.contains("label") || !doc["label"].is_string() || !doc.contains("runs") || !doc["runs"].is_array()) {
    return invalid_argument("'{}': a result needs a 'label' and 'runs'", path);
  }
  return doc;
}

Result<std::vector<CompareRow>> compare_results(const std::vector<Json>& docs, const std::string& baseline) {
  if (docs.empty()) return invalid_argument("nothing to compare");
  std::set<std::string> labels;
  std::vector<CompareRow> rows;
  for (const auto& d : docs) {
    CompareRow row;
    row.label = d.value("label", "");
    if (!labels.insert(row.label).second) {
      return invalid_argument("two results share the label '{}': rerun one with --label", row.label);
    }
    if (d.contains("max_sustainable_rps") && d["max_sustainable_rps"].is_number()) {
      row.max_rps = d["max_sustainable_rps"].get<double>();
    }
    rows.push_back(row);
  }
  std::string base = baseline.empty() ? rows.front().label : baseline;
  const CompareRow* b = nullptr;
  for (const auto& r : rows) {
    if (r.label == base) b = &r;
  }
  if (!b) {
    std::string known;
    for (const auto& l : labels) known += (known.empty() ? "" : ", ") + l;
    return invalid_argument("baseline '{}' is not among the labels ({})", base, known);
  }
  double base_rps = b->max_rps.value_or(0);
  for (auto& r : rows) {
    if (r.max_rps && base_rps > 0) r.ratio = *r.max_rps / base_rps;
  }
  return rows;
}

std::string format_compare(const std::vector<CompareRow>& rows, const std::string& baseline) {
  std::string s = fmt::format("{:<28} {:>22} {:>16}\n", "deployment", "max sustainable req/s",
                              "vs " + (baseline.empty() ? rows.front().label : baseline));
  for (const auto& r : rows) {
    s += fmt::format("{:<28} {:>22} {:>16}\n", r.label, r.max_rps ? fmt::format("{:.3f}", *r.max_rps) : "n/a",
                     r.ratio ? fmt::format("{:.2f}x", *r.ratio) : "n/a");
  }
  return s;
}

}  // namespace baton::bench
