#include "bench/html_report.h"

#include <cmath>

#include <fmt/format.h>

#include "bench/chart_js_asset.h"
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
)CSS";

constexpr const char* kScript = R"JS(
const D = JSON.parse(document.getElementById('baton-data').textContent);
const COLORS = ['#1f77b4','#d62728','#2ca02c','#ff7f0e','#9467bd','#8c564b','#e377c2','#17becf'];
const color = i => COLORS[i % COLORS.length];
// One point per target rate (repeated trials: their median), sorted by offered load.
function curve(doc, f) {
  const byRate = {};
  doc.runs.forEach(r => { const y = f(r); if (y === null || y === undefined) return;
    (byRate[r.target_rate_rps] = byRate[r.target_rate_rps] || []).push(
        {x: r.metrics.offered_rate_rps || r.target_rate_rps, y: y}); });
  return Object.values(byRate).map(g => { g.sort((a, b) => a.y - b.y); return g[(g.length - 1) >> 1]; })
               .sort((a, b) => a.x - b.x);
}
function limitsFor(metric) {
  const seen = {};
  D.docs.forEach(d => (d.slo || []).forEach(t => { if (t.metric === metric) seen[t.target] = t.limit_ms; }));
  return Object.entries(seen);
}
function vsRate(id, metric, title, logY) {
  const ds = []; let minX = Infinity, maxX = 0;
  D.docs.forEach((doc, i) => {
    for (const [stat, dash] of [['p90', []], ['p50', [6, 4]]]) {
      const pts = curve(doc, r => r.metrics[metric + '_ms'][stat]).filter(p => p.y > 0);
      pts.forEach(p => { minX = Math.min(minX, p.x); maxX = Math.max(maxX, p.x); });
      ds.push({label: doc.label + ' ' + stat, data: pts, showLine: true, borderColor: color(i),
               backgroundColor: color(i), borderDash: dash, pointRadius: 3});
    }
  });
  if (!isFinite(minX)) { minX = 0; maxX = 1; }
  limitsFor(metric).forEach(([name, ms]) => ds.push({label: 'SLO ' + name, data: [{x: minX, y: ms}, {x: maxX, y: ms}],
      showLine: true, borderColor: '#888', borderDash: [2, 3], pointRadius: 0, borderWidth: 1.5}));
  new Chart(document.getElementById(id), {type: 'scatter', data: {datasets: ds}, options: {
    animation: false, responsive: true, maintainAspectRatio: false,
    plugins: {title: {display: true, text: title}, legend: {labels: {boxWidth: 12, font: {size: 11}}}},
    scales: {x: {title: {display: true, text: 'offered load (req/s)'}},
             y: logY ? {type: 'logarithmic', title: {display: true, text: 'ms (log scale)'}}
                     : {title: {display: true, text: 'ms'}}}}});
}
function bars(id) {
  const labels = D.docs.map(d => d.label);
  const base = D.docs.find(d => d.label === D.baseline) || D.docs[0];
  const b = base.max_sustainable_rps;
  new Chart(document.getElementById(id), {type: 'bar', data: {labels: labels.map((l, i) => {
      const v = D.docs[i].max_sustainable_rps;
      return (v !== null && b) ? l + ' (' + (v / b).toFixed(2) + 'x)' : l; }),
    datasets: [{label: 'max sustainable ' + D.unit, data: D.docs.map(d => d.max_sustainable_rps || 0),
                backgroundColor: D.docs.map((d, i) => color(i))}]},
    options: {animation: false, responsive: true, maintainAspectRatio: false,
      plugins: {title: {display: true, text: 'Max sustainable QPS under the SLO (ratio to ' + base.label + ')'},
                legend: {display: false}},
      scales: {y: {beginAtZero: true, title: {display: true, text: D.unit}}}}});
}
function goodput(id) {
  const ds = [];
  D.docs.forEach((doc, i) => {
    for (const [key, dash, name] of [['goodput', [], 'goodput'], ['throughput', [6, 4], 'throughput']]) {
      const pts = curve(doc, r => key === 'goodput' ? r.slo.goodput_rps : r.metrics.request_throughput_rps);
      ds.push({label: doc.label + ' ' + name, data: pts, showLine: true, borderColor: color(i),
               backgroundColor: color(i), borderDash: dash, pointRadius: 3});
    }
  });
  new Chart(document.getElementById(id), {type: 'scatter', data: {datasets: ds}, options: {
    animation: false, responsive: true, maintainAspectRatio: false,
    plugins: {title: {display: true, text: 'Goodput (requests meeting every SLO limit) and throughput vs offered load'},
              legend: {labels: {boxWidth: 12, font: {size: 11}}}},
    scales: {x: {title: {display: true, text: 'offered load (req/s)'}},
             y: {beginAtZero: true, title: {display: true, text: 'req/s'}}}}});
}
function cdf(id, key, title) {
  const ds = D.docs.map((doc, i) => ({label: doc.label, data: ((doc.cdf || {})[key] || []).map(p => ({x: p[0], y: p[1]})),
      showLine: true, borderColor: color(i), backgroundColor: color(i), pointRadius: 0, borderWidth: 2}));
  limitsFor(key.replace('_ms', '')).forEach(([name, ms]) => ds.push({label: 'SLO ' + name,
      data: [{x: ms, y: 0}, {x: ms, y: 1}], showLine: true, borderColor: '#888', borderDash: [2, 3], pointRadius: 0}));
  new Chart(document.getElementById(id), {type: 'scatter', data: {datasets: ds}, options: {
    animation: false, responsive: true, maintainAspectRatio: false,
    plugins: {title: {display: true, text: title}, legend: {labels: {boxWidth: 12, font: {size: 11}}}},
    scales: {x: {title: {display: true, text: 'ms'}}, y: {min: 0, max: 1, title: {display: true, text: 'fraction of requests'}}}}});
}
vsRate('c-ttft', 'ttft', 'TTFT vs offered load (p90 solid, p50 dashed)', true);
vsRate('c-tpot', 'tpot', 'TPOT vs offered load (p90 solid, p50 dashed)', false);
vsRate('c-e2e', 'e2e', 'E2E latency vs offered load (p90 solid, p50 dashed)', true);
bars('c-max');
goodput('c-good');
cdf('d-ttft', 'ttft_ms', 'TTFT distribution (CDF)');
cdf('d-tpot', 'tpot_ms', 'TPOT distribution (CDF)');
cdf('d-e2e', 'e2e_ms', 'E2E latency distribution (CDF)');
)JS";

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
  for (const auto& d : docs) {
    const Json& search = d.contains("search") ? d["search"] : Json();
    bool open_ended = search.is_object() && !search.value("converged", false) &&
                      !(search.contains("min_failed_rps") && search["min_failed_rps"].is_number());
    std::string note = search.is_object() && !search.value("converged", false) ? search.value("note", "") : "";
    h += "<div class=\"card\"><div class=\"l\">" + esc(d.value("label", "")) +
         ": max sustainable</div><div class=\"v\">" + (open_ended ? "&ge; " : "") +
         num(d.value("max_sustainable_rps", Json()), "{:.2f}") + " " + result_rate_unit(d) + "</div>" +
         (note.empty() ? "" : "<div class=\"l\">" + esc(note) + "</div>") + "</div>";
  }
  h += "</div>";
  for (const auto& d : docs) {
    for (const auto& r : d.value("runs", Json::array())) {
      const auto& c = r.value("client", Json::object());
      if (c.value("fell_behind", false)) {
        h += "<div class=\"warn\"><b>" + esc(d.value("label", "")) + ", " + num(r["target_rate_rps"]) + " " +
             result_rate_unit(d) + ":</b> " + esc(c.value("warning", "")) + "</div>";
      }
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
  h += "<h2>Runs</h2><table><tr><th class=\"t\">deployment</th><th>target " + unit +
       "</th><th>offered req/s</th>"
       "<th>done</th><th>failed</th><th>throughput req/s</th><th>output tok/s</th><th>goodput req/s</th>"
       "<th>attainment</th><th>TTFT p50/p90/p99 ms</th><th>TPOT p50/p90/p99 ms</th><th>E2E p50/p90/p99 ms</th>"
       "<th>sched. delay p99 ms</th><th class=\"t\">SLO</th>" +
       std::string(any_instances ? "<th class=\"t\">instances: waiting max (KV max)</th>" : "") + "</tr>";
  for (const auto& d : docs) {
    for (const auto& r : d.value("runs", Json::array())) {
      const auto& m = r["metrics"];
      const auto& s = r["slo"];
      auto three = [&](const char* k) {
        return num(m[k]["p50"], "{:.1f}") + " / " + num(m[k]["p90"], "{:.1f}") + " / " + num(m[k]["p99"], "{:.1f}");
      };
      bool sustainable = s.value("sustainable", false);
      bool has_slo = !d.value("slo", Json::array()).empty() || d.value("slo_min_attainment", 0.0) > 0;
      h += "<tr><td class=\"t\">" + esc(d.value("label", "")) + "</td><td>" + num(r["target_rate_rps"]) + "</td><td>" +
           num(m["offered_rate_rps"]) + "</td><td>" + num(m["num_ok"], "{:.0f}") + "</td><td>" +
           num(m["num_failed"], "{:.0f}") + "</td><td>" + num(m["request_throughput_rps"]) + "</td><td>" +
           num(m["output_token_throughput_tps"], "{:.1f}") + "</td><td>" + num(s["goodput_rps"]) + "</td><td>" +
           num(s["attainment"], "{:.3f}") + "</td><td>" + three("ttft_ms") + "</td><td>" + three("tpot_ms") +
           "</td><td>" + three("e2e_ms") + "</td><td>" + num(m["scheduling_delay_ms"]["p99"]) + "</td><td class=\"t " +
           (has_slo ? (sustainable ? "ok\">met" : "bad\">broken: " + esc(s.value("first_broken", ""))) : "\">&ndash;") +
           (s.value("stopped_early", false) ? " (stopped early: " + esc(s.value("stop_reason", "")) + ")" : "") +
           "</td>" + (any_instances ? "<td class=\"t\">" + instance_peaks(r) + "</td>" : "") + "</tr>";
    }
  }
  h += "</table>";
  Json data{{"baseline", base}, {"docs", docs}, {"unit", unit}};
  h += "<script id=\"baton-data\" type=\"application/json\">" + script_json(data) + "</script>";
  h += "<script>";
  h += chart_js_source();
  h += "</script><script>";
  h += kScript;
  h += "</script></body></html>\n";
  return h;
}

}  // namespace baton::bench
