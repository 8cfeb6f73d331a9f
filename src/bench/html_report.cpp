#include "bench/html_report.h"

#include <cmath>

#include <fmt/format.h>

#include "bench/chart_js_asset.h"
#include "bench/html_report_script.h"
#include "bench/workload.h"

namespace baton::bench {

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

std::string esc(const std::string& s) { return html_escape(s); }

// JSON safe inside <script>: no "</" sequence can close the element.
std::string script_json(const Json& j) {
  std::string s = j.dump();
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<' && i + 1 < s.size() && s[i + 1] == '/') {
      out += "<\\/";
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string num(const Json& v, const char* f = "{:.2f}") {
  if (!v.is_number()) return "&ndash;";
  return fmt::format(fmt::runtime(f), v.get<double>());
}

// "prefill-0 12 (45%), decode-0 0 (3%)": each instance's peak queue and KV
// usage during a run (a sweep's runs[k].instances; the router is left out).
std::string instance_peaks(const Json& run) {
  std::string out;
  for (const auto& i : run.value("instances", Json::array())) {
    if (!i.is_object() || i.value("role", "") == "router") continue;
    if (!out.empty()) out += ", ";
    out += esc(i.value("instance", "?")) + " ";
    out += i.value("samples", 0) > 0 ? num(i.value("max_waiting", Json()), "{:.0f}") + " (" +
                                           num(Json(i.value("max_kv_usage", 0.0) * 100), "{:.0f}") + "%)"
                                     : "no sample";
  }
  return out.empty() ? "&ndash;" : out;
}

bool has_slo(const Json& doc) {
  return !doc.value("slo", Json::array()).empty() || doc.value("slo_min_attainment", 0.0) > 0;
}

// "2.00 req/s offered (4.00 req/s requested)": where a run ran, the offered rate first.
std::string rates_text(const Json& doc, const Json& run) {
  const std::string requested = num(run["target_rate_rps"]) + " " + result_rate_unit(doc) + " requested";
  const Json& offered = run["metrics"].value("offered_rate_rps", Json());
  if (!offered.is_number()) return requested + " (under 2 arrivals: no offered rate)";
  return num(offered) + " req/s offered (" + requested + ")";
}

// "agg, 2.00 req/s offered (4.00 req/s requested)": a run, as notes and warnings name it.
std::string run_name(const Json& doc, const Json& run) {
  return esc(doc.value("label", "")) + ", " + rates_text(doc, run);
}

// The SLO cell of a run's row, after its opening `class="t `: the class, then the verdict and why.
std::string verdict_cell(const Json& doc, const Json& run) {
  const Json& s = run["slo"];
  if (!has_slo(doc)) return "\">&ndash;";
  if (s.value("sustainable", false)) return "ok\">met";
  std::string out = "bad\">broken: " + esc(s.value("first_broken", ""));
  if (s.value("stopped_early", false)) out += " (stopped early, certain: " + esc(s.value("stop_reason", "")) + ")";
  return out;
}

// The headline of one result: a search's (or a sweep's) max sustainable load, the offered rate
// leading; a single run's verdict.
std::string headline_card(const Json& d) {
  const std::string label = esc(d.value("label", ""));
  const std::string unit = result_rate_unit(d);
  const Json runs = d.value("runs", Json::array());
  const Json& search = d.contains("search") ? d["search"] : Json();
  auto card = [&](const std::string& title, const std::string& cls, const std::string& value, const std::string& sub) {
    return "<div class=\"card\"><div class=\"l\">" + label + ": " + title + "</div><div class=\"v" +
           (cls.empty() ? "" : " " + cls) + "\">" + value + "</div>" +
           (sub.empty() ? "" : "<div class=\"l\">" + sub + "</div>") + "</div>";
  };
  if (!search.is_object() && runs.size() == 1) {
    const Json& r = runs[0];
    const std::string at = "at " + rates_text(d, r);
    if (!has_slo(d)) return card("single run, no SLO given", "", "no verdict", at);
    const Json& s = r["slo"];
    if (s.value("sustainable", false)) return card("single run", "ok", "SLO met", at);
    std::string why = "broke " + esc(s.value("first_broken", ""));
    for (const auto& t : s.value("targets", Json::array())) {
      if (t.value("target", "") == s.value("first_broken", "") && t.value("value_ms", Json()).is_number()) {
        why += " (measured " + num(t["value_ms"], "{:.1f}") + " ms)";
      }
    }
    if (s.value("stopped_early", false)) why += ", stopped early: " + esc(s.value("stop_reason", ""));
    return card("single run", "bad", "SLO broken", at + "; " + why);
  }
  const bool converged = search.is_object() && search.value("converged", false);
  const bool open_ended = search.is_object() && !converged &&
                          !(search.contains("min_failed_rps") && search["min_failed_rps"].is_number());
  const Json offered = d.value("max_sustainable_offered_rps", Json());
  const Json requested = d.value("max_sustainable_rps", Json());
  std::string sub = requested.is_number() ? num(requested) + " " + unit + " requested" : "";
  if (!has_slo(d)) sub = "no SLO given: no verdict";
  else if (!requested.is_number()) sub = "no rate met the SLO";
  size_t num_stopped = 0;
  for (const auto& r : runs) num_stopped += r["slo"].value("stopped_early", false) ? 1 : 0;
  sub += (sub.empty() ? "" : "; ") + std::to_string(runs.size()) + " trial(s)" +
         (num_stopped ? ", " + std::to_string(num_stopped) + " stopped early" : "");
  if (search.is_object() && !converged && !search.value("note", "").empty())
    sub += "; " + esc(search.value("note", ""));
  const Json& value = offered.is_number() ? offered : requested;
  return card("max sustainable offered load", "",
              (open_ended ? "&ge; " : "") + num(value) + " " +
                  (offered.is_number() ? std::string("req/s") : unit + " requested"),
              sub);
}

constexpr const char* kStyle = R"CSS(
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub{color:#666;font-size:13px;margin-bottom:14px}
.headline{display:flex;gap:14px;flex-wrap:wrap;margin:10px 0 18px}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:10px 16px;min-width:180px}
.card .v{font-size:26px;font-weight:600}.card .l{font-size:12px;color:#666}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.chart{background:#fff;border:1px solid #ddd;border-radius:8px;padding:8px;height:330px;position:relative}
table{border-collapse:collapse;background:#fff;font-size:12px}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}th{background:#f0f0f0}
td.t,th.t{text-align:left}.bad{color:#b00020;font-weight:600}.ok{color:#1b7f3a;font-weight:600}
pre{background:#fff;border:1px solid #ddd;padding:10px;font-size:12px;white-space:pre-wrap}
.warn{background:#fff3f3;border:1px solid #e99;padding:8px 12px;border-radius:6px;margin:8px 0}
.note{color:#555;font-size:12px;margin:4px 0}
.card .v.ok{color:#1b7f3a}.card .v.bad{color:#b00020}
)CSS";

}  // namespace

std::string render_html_report(const std::vector<Json>& docs, const std::string& baseline, const std::string& title) {
  std::string base = baseline.empty() && !docs.empty() ? docs.front().value("label", "") : baseline;
  std::string h;
  h += "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" + esc(title) + "</title><style>" + kStyle +
       "</style></head><body>";
  h += "<h1>" + esc(title) + "</h1>";
  const std::string unit = docs.empty() ? std::string("req/s") : result_rate_unit(docs.front());
  std::string slo_text;
  if (!docs.empty()) {
    for (const auto& t : docs.front().value("slo", Json::array())) {
      slo_text += (slo_text.empty() ? "" : ", ") + t.value("target", "");
    }
  }
  h += "<div class=\"sub\">SLO: " + esc(slo_text.empty() ? "none given" : slo_text) +
       ". Charts are drawn from the data in this file; nothing is fetched.</div>";
  h += "<div class=\"headline\">";
  for (const auto& d : docs) h += headline_card(d);
  h += "</div>";
  // What makes the figures suspect leads; the client's own small lags follow the table.
  for (const auto& d : docs) {
    for (const auto& r : d.value("runs", Json::array())) {
      std::string w = r.value("prefix_cache", Json::object()).value("warning", "");
      if (!w.empty()) h += "<div class=\"warn\"><b>" + run_name(d, r) + ":</b> " + esc(w) + "</div>";
    }
  }
  h += "<div class=\"grid\">";
  for (const char* id : {"c-ttft", "c-tpot", "c-e2e", "c-max", "c-good", "d-ttft", "d-tpot", "d-e2e"}) {
    h += fmt::format("<div class=\"chart\"><canvas id=\"{}\"></canvas></div>", id);
  }
  h += "</div>";
  h += "<h2>Metric definitions</h2><pre>" + esc(docs.empty() ? "" : docs.front().value("metric_definitions", "")) +
       "</pre>";
  // Runs of a sweep carry each instance's peaks (deploy/metrics_sampler.h): a column for them.
  bool any_instances = false;
  for (const auto& d : docs) {
    for (const auto& r : d.value("runs", Json::array())) any_instances = any_instances || r.contains("instances");
  }
  h += "<h2>Runs</h2><table><tr><th class=\"t\">deployment</th><th>offered req/s</th><th>requested " + unit +
       "</th><th>done</th><th>failed</th><th>cancelled by early stop</th><th>throughput req/s</th>"
       "<th>output tok/s</th><th>goodput req/s</th><th>attainment</th><th>TTFT p50/p90/p99 ms</th>"
       "<th>TPOT p50/p90/p99 ms</th><th>E2E p50/p90/p99 ms</th><th>sched. delay p99 ms</th><th class=\"t\">SLO</th>" +
       std::string(any_instances ? "<th class=\"t\">instances: waiting max (KV max)</th>" : "") + "</tr>";
  std::string notes;
  for (const auto& d : docs) {
    const Json runs = d.value("runs", Json::array());
    for (size_t k = 0; k < runs.size(); ++k) {
      const Json& r = runs[k];
      const auto& m = r["metrics"];
      auto three = [&](const char* key) {
        return num(m[key]["p50"], "{:.1f}") + " / " + num(m[key]["p90"], "{:.1f}") + " / " +
               num(m[key]["p99"], "{:.1f}");
      };
      const bool cdf_run = d.value("distribution_run", Json()).is_number() && d["distribution_run"] == k;
      h += "<tr><td class=\"t\">" + esc(d.value("label", "")) + "</td><td>" + num(m["offered_rate_rps"]) + "</td><td>" +
           num(r["target_rate_rps"]) + "</td><td>" + num(m["num_ok"], "{:.0f}") + "</td><td>" +
           num(m["num_failed"], "{:.0f}") + "</td><td>" + num(m.value("num_cancelled", Json(0)), "{:.0f}") +
           "</td><td>" + num(m["request_throughput_rps"]) + "</td><td>" +
           num(m["output_token_throughput_tps"], "{:.1f}") + "</td><td>" + num(r["slo"]["goodput_rps"]) + "</td><td>" +
           num(r["slo"]["attainment"], "{:.3f}") + "</td><td>" + three("ttft_ms") + "</td><td>" + three("tpot_ms") +
           "</td><td>" + three("e2e_ms") + "</td><td>" + num(m["scheduling_delay_ms"]["p99"]) + "</td><td class=\"t " +
           verdict_cell(d, r) + (cdf_run ? " (the CDFs' run)" : "") + "</td>" +
           (any_instances ? "<td class=\"t\">" + instance_peaks(r) + "</td>" : "") + "</tr>";
      const Json c = r.value("client", Json::object());
      for (const char* key : {"warning", "warmup_note"}) {
        if (!c.value(key, "").empty())
          notes += "<div class=\"note\">" + run_name(d, r) + ": " + esc(c.value(key, "")) + "</div>";
      }
    }
  }
  h += "</table>" + notes;
  Json data{{"baseline", base}, {"docs", docs}, {"unit", unit}};
  h += "<script id=\"baton-data\" type=\"application/json\">" + script_json(data) + "</script>";
  h += "<script>";
  h += chart_js_source();
  h += "</script><script>";
  h += kHtmlReportScript;
  h += "</script></body></html>\n";
  return h;
}

}  // namespace baton::bench
