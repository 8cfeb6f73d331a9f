#include "planner/plan_report.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "bench/html_report.h"

namespace baton::planner {

namespace {

using bench::html_escape;

std::string rate_text(double r) { return r > 0 ? fmt::format("{:.3g}", r) : "none"; }

// Green where PD wins, red where it loses, white at parity; log-scaled so
// 2x and 0.5x are equally strong.
std::string ratio_colour(double ratio) {
  if (!(ratio > 0)) return "#eeeeee";
  const double strength = std::min(1.0, std::abs(std::log2(std::isfinite(ratio) ? ratio : 4.0)) / 2.0);
  const int fade = static_cast<int>(255 - 130 * strength);
  return ratio >= 1 ? fmt::format("rgb({},255,{})", fade, fade) : fmt::format("rgb(255,{},{})", fade, fade);
}

std::string deployments_table(const Plan& plan) {
  std::string h = "<table><tr><th>deployment</th><th>predicted max rate (" + html_escape(plan.rate_unit) +
                  ")</th><th>band</th><th>token budget</th><th>breaks first</th></tr>\n";
  for (size_t i = 0; i < plan.deployments.size(); ++i) {
    const DeploymentPlan& d = plan.deployments[i];
    const bool best = static_cast<int>(i) == plan.recommended;
    const std::string budget = d.num_agg > 0 ? std::to_string(d.prefill_budget)
                                             : fmt::format("prefill {}, decode {}", d.prefill_budget, d.decode_budget);
    h += fmt::format("<tr{}><td>{}{}</td><td>{}</td><td>{} - {}</td><td>{}</td><td>{}</td></tr>\n",
                     best ? " class=best" : "", html_escape(d.name), best ? " (recommended)" : "",
                     rate_text(d.max_rate), rate_text(d.rate_low), rate_text(d.rate_high), budget,
                     html_escape(d.first_broken.empty() ? "-" : d.first_broken));
  }
  return h + "</table>\n";
}

std::string fit_table(const PlanReportInputs& r) {
  std::string h = fmt::format(
      "<p>Step-time model: <code>{}</code>. Fit over {} measurements ({} whole steps, the rest kernels timed "
      "alone); over the steps RMS relative error {:.1f}%, max {:.1f}%.</p>\n<table><tr><th>measurement</th><th>model "
      "error</th></tr>\n",
      html_escape(r.model.dump()), r.fit.num_samples, r.fit.num_whole_steps, 100 * r.fit.rms_rel_error,
      100 * r.fit.max_rel_error);
  for (size_t i = 0; i < r.fit.rel_errors.size(); ++i) {
    const std::string label = i < r.fit_labels.size() ? r.fit_labels[i] : std::to_string(i);
    h += fmt::format("<tr><td>{}</td><td>{:+.1f}%</td></tr>\n", html_escape(label), 100 * r.fit.rel_errors[i]);
  }
  return h + "</table>\n";
}

std::string map_table(const CrossoverMap& m) {
  std::string h = fmt::format("<h3>{} &times; {}</h3>\n<table class=map><tr><th>{} \\ {}</th>", html_escape(m.y_name),
                              html_escape(m.x_name), html_escape(m.y_name), html_escape(m.x_name));
  for (double x : m.xs) h += fmt::format("<th>{:g}</th>", x);
  h += "</tr>\n";
  size_t k = 0;
  for (double y : m.ys) {
    h += fmt::format("<tr><th>{:g}</th>", y);
    for (size_t i = 0; i < m.xs.size() && k < m.cells.size(); ++i, ++k) {
      const CrossoverCell& c = m.cells[k];
      const std::string ratio = std::isfinite(c.ratio) ? fmt::format("{:.2f}x", c.ratio) : "PD only";
      h += fmt::format("<td style=\"background:{}\" title=\"agg {} vs {} {}\">{}<br><small>{}</small></td>",
                       ratio_colour(c.ratio), rate_text(c.agg_rate), html_escape(c.best_pd), rate_text(c.best_pd_rate),
                       ratio, html_escape(c.best_pd));
    }
    h += "</tr>\n";
  }
  return h + "</table>\n";
}

}  // namespace

std::string render_plan_html(const PlanReportInputs& r) {
  std::string h = "<!doctype html><html><head><meta charset=utf-8><title>" + html_escape(r.title) +
                  "</title><style>body{font-family:sans-serif;margin:2em;max-width:70em}"
                  "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
                  "text-align:right}tr.best{font-weight:bold;background:#eef6ff}table.map td{text-align:center}"
                  "code,pre{background:#f6f6f6}</style></head><body>\n";
  h += "<h1>" + html_escape(r.title) + "</h1>\n";
  h += "<h2>Planned for</h2><pre>" + html_escape(r.inputs.dump(2)) + "</pre>\n";
  h += "<h2>Deployments</h2>\n";
  if (r.plan.recommended >= 0) {
    const DeploymentPlan& best = r.plan.deployments[static_cast<size_t>(r.plan.recommended)];
    h += fmt::format("<p>Recommended: <b>{}</b>, predicted {} {} (band {} - {}).</p>\n", html_escape(best.name),
                     rate_text(best.max_rate), html_escape(r.plan.rate_unit), rate_text(best.rate_low),
                     rate_text(best.rate_high));
  } else {
    h += "<p>No deployment meets the SLO at any rate searched.</p>\n";
  }
  h += deployments_table(r.plan);
  h += "<p>The band: the same search with every step as much slower and faster as the step-time model's RMS "
       "error over its measurements.</p>\n";
  if (!r.maps.empty()) {
    h += "<h2>Where PD wins</h2>\n<p>Each cell: the best PD split's predicted rate over agg's, on the same GPUs "
         "(green: PD wins, red: agg wins).</p>\n";
    for (const CrossoverMap& m : r.maps) h += map_table(m);
  }
  h += "<h2>Step-time model</h2>\n" + fit_table(r);
  h += "<p>How the prediction is made and where it is known to be wrong: docs/planner.md.</p>\n</body></html>\n";
  return h;
}

}  // namespace baton::planner
