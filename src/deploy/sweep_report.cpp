#include "deploy/sweep_report.h"

#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "bench/bench_result.h"
#include "bench/html_report.h"
#include "bench/workload.h"
#include "common/files.h"
#include "deploy/sweep.h"

namespace baton::deploy {

namespace fs = std::filesystem;
using bench::html_escape;

namespace {

Json opt(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

// "3.20 (1.28x)", ">= 8.00" (every rate passed), "< 0.25" (none passed),
// "6 (other cards)", "partial: 3 (< 4)", "missing", "-".
std::string cell_text(const SweepCell& c, bool with_ratio) {
  if (!c.applies) return "-";
  if (c.partial) {
    if (c.max_rps) {
      return c.min_failed_rps ? fmt::format("partial: {:.3g} (< {:.3g})", *c.max_rps, *c.min_failed_rps)
                              : fmt::format("partial: >= {:.3g}", *c.max_rps);
    }
    return c.min_failed_rps ? fmt::format("partial: < {:.3g}", *c.min_failed_rps) : std::string("partial");
  }
  if (!c.present) return "missing";
  if (!c.max_rps) {
    return c.min_failed_rps ? fmt::format("< {:.3g}", *c.min_failed_rps) : std::string("none passed");
  }
  std::string s = fmt::format("{}{:.3g}", c.min_failed_rps ? "" : ">= ", *c.max_rps);
  if (with_ratio && c.ratio) s += fmt::format(" ({:.2f}x)", *c.ratio);
  if (with_ratio && c.other_cards) s += " (other cards)";
  return s;
}

// The cards and the day of a result document.
void read_provenance(const Json& doc, SweepCell* c) {
  if (!doc.contains("config") || !doc["config"].is_object()) return;
  const Json& cfg = doc["config"];
  if (!cfg.contains("sweep") || !cfg["sweep"].is_object()) return;
  const Json& sw = cfg["sweep"];
  c->cards = gpu_cards(sw.value("gpus", Json::array()));
  if (c->cards.empty() && sw.contains("deployment") && sw["deployment"].is_object() &&
      sw["deployment"].value("device", std::string()) == "cpu") {
    c->cards = "CPU";
  }
  c->measured = sw.value("finished_utc", std::string()).substr(0, 10);
}

// A search not finished: what its trials so far say.
Status read_partial_cell(const std::string& path, SweepCell* c) {
  BATON_ASSIGN_OR_RETURN(std::vector<Json> trials, read_partial_trials(path));
  c->partial = true;
  c->num_trials = trials.size();
  for (const auto& t : trials) {
    const double rate = t.value("rate", 0.0);
    if (t.value("sustainable", false)) {
      if (!c->max_rps || rate > *c->max_rps) c->max_rps = rate;
    } else if (!c->min_failed_rps || rate < *c->min_failed_rps) {
      c->min_failed_rps = rate;
      c->broke_first = t.value("first_broken", std::string());
    }
  }
  if (!trials.empty()) c->cards = gpu_cards(trials.front().value("gpus", Json::array()));
  return Status::ok();
}

// The distinct values, sorted, joined; "" left out.
std::string joined(std::vector<std::string> v, const char* sep) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  std::string out;
  for (const auto& x : v) {
    if (!x.empty()) out += (out.empty() ? "" : sep) + x;
  }
  return out;
}

std::string broke_text(const SweepCell& c, const std::string& unit) {
  if (!c.applies) return "-";
  if (!c.present) return "missing";
  if (c.broke_first.empty()) return c.min_failed_rps ? "?" : "none (every rate passed)";
  return c.min_failed_rps ? fmt::format("{} at {:.3g} {}", c.broke_first, *c.min_failed_rps, unit) : c.broke_first;
}

// The workload's name, with its rate's unit where it is not req/s.
std::string workload_text(const SweepRow& r) {
  return r.rate_unit == "req/s" ? r.workload : r.workload + " (" + r.rate_unit + ")";
}

// "4x NVIDIA H200 (2026-11-27)", "-" when nothing is on disk.
std::string row_cards_text(const SweepRow& r) {
  if (r.cards.empty()) return "-";
  return r.measured.empty() ? r.cards : r.cards + " (" + r.measured + ")";
}

}  // namespace

Result<SweepTable> build_sweep_table(const Experiment& e, const std::string& out_dir,
                                     std::vector<std::vector<Json>>* docs) {
  SweepTable t;
  t.experiment = e.name;
  t.baseline = e.baseline;
  for (const auto& d : e.deployments) t.deployments.push_back(d.name);
  if (docs) docs->assign(e.workloads.size(), {});
  for (size_t wi = 0; wi < e.workloads.size(); ++wi) {
    const auto& w = e.workloads[wi];
    SweepRow row;
    row.workload = w.name;
    row.slo = w.slo_text;
    row.rate_unit = bench::rate_unit(w.options.kind);
    for (const auto& d : e.deployments) {
      SweepCell c;
      c.deployment = d.name;
      c.applies = e.runs(d, w);
      const std::string path = result_path(out_dir, d.name, w.name);
      const std::string partial = partial_path(out_dir, d.name, w.name);
      if (c.applies && path_exists(path)) {
        BATON_ASSIGN_OR_RETURN(Json doc, bench::load_result(path));
        c.present = true;
        read_provenance(doc, &c);
        if (doc.contains("max_sustainable_rps") && doc["max_sustainable_rps"].is_number()) {
          c.max_rps = doc["max_sustainable_rps"].get<double>();
        }
        const Json& s = doc.contains("search") ? doc["search"] : Json();
        if (s.is_object()) {
          if (s.contains("min_failed_rps") && s["min_failed_rps"].is_number()) {
            c.min_failed_rps = s["min_failed_rps"].get<double>();
          }
          c.broke_first = s.value("broke_first", "");
          c.converged = s.value("converged", false);
          c.num_trials = s.value("num_trials", size_t{0});
        }
        if (docs) (*docs)[wi].push_back(std::move(doc));
      } else if (c.applies) {
        if (path_exists(partial)) BATON_RETURN_IF_ERROR(read_partial_cell(partial, &c));
        ++t.num_missing;
      }
      row.cells.push_back(std::move(c));
    }
    // Baseline: the experiment's where this workload runs it, else its first deployment.
    row.baseline = e.baseline;
    const SweepCell* base = nullptr;
    for (const auto& c : row.cells) {
      if (c.deployment == e.baseline && c.applies) base = &c;
    }
    if (!base) {
      for (const auto& c : row.cells) {
        if (c.applies) {
          base = &c;
          break;
        }
      }
      row.baseline = base ? base->deployment : "";
    }
    // Ratios and the best only among results on the baseline's cards (or, without
    // a baseline result, the first result's): figures of other cards compare with nothing.
    const SweepCell* ref = base && base->present ? base : nullptr;
    for (const auto& c : row.cells) {
      if (!ref && c.present) ref = &c;
    }
    const double base_rps = base && base->present && base->max_rps ? *base->max_rps : 0;
    double best_rps = 0;
    std::vector<std::string> cards, days;
    for (const auto& c : row.cells) {
      if (c.present || c.partial) cards.push_back(c.cards.empty() ? "unrecorded" : c.cards);
      days.push_back(c.measured);
    }
    row.cards = joined(cards, "; ");
    if (row.cards.find("; ") != std::string::npos) row.cards = "mixed: " + row.cards;
    row.measured = joined(days, ", ");
    for (auto& c : row.cells) {
      if (!c.present) continue;
      if (ref && c.cards != ref->cards) {
        c.other_cards = true;
        continue;
      }
      if (c.max_rps && base_rps > 0) c.ratio = *c.max_rps / base_rps;
      if (c.max_rps && *c.max_rps > best_rps) {
        best_rps = *c.max_rps;
        row.best = c.deployment;
      } else if (c.max_rps && *c.max_rps == best_rps && best_rps > 0) {
        row.best += " = " + c.deployment;  // a tie names every deployment in it
      }
    }
    for (const auto& cmp : e.comparisons) {
      const SweepCell *a = nullptr, *b = nullptr;
      for (const auto& c : row.cells) {
        if (c.deployment == cmp.deployment && c.applies) a = &c;
        if (c.deployment == cmp.against && c.applies) b = &c;
      }
      if (!a || !b) continue;
      SweepComparisonRow r{cmp.name, w.name, cmp.deployment, cmp.against, std::nullopt, ""};
      if (!a->present || !b->present) {
        r.note = "not run yet";
      } else if (a->cards != b->cards) {
        r.note = fmt::format("different cards: {} vs {}", a->cards.empty() ? "unrecorded" : a->cards,
                             b->cards.empty() ? "unrecorded" : b->cards);
      } else if (a->max_rps && b->max_rps && *b->max_rps > 0) {
        r.ratio = *a->max_rps / *b->max_rps;
      } else {
        r.note = "no rate passed";
      }
      t.comparisons.push_back(std::move(r));
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

Json SweepTable::to_json() const {
  Json rows_json = Json::array();
  for (const auto& r : rows) {
    Json cells = Json::object();
    for (const auto& c : r.cells) {
      if (!c.applies) continue;
      cells[c.deployment] = {{"present", c.present},
                             {"max_sustainable_rps", opt(c.max_rps)},
                             {"open_ended", c.present && c.max_rps && !c.min_failed_rps},
                             {"min_failed_rps", opt(c.min_failed_rps)},
                             {"broke_first", c.broke_first},
                             {"ratio_to_baseline", opt(c.ratio)},
                             {"converged", c.converged},
                             {"num_trials", c.num_trials},
                             {"partial", c.partial},
                             {"cards", c.cards},
                             {"measured", c.measured}};
    }
    rows_json.push_back({{"workload", r.workload},
                         {"slo", r.slo},
                         {"baseline", r.baseline},
                         {"best", r.best.empty() ? Json(nullptr) : Json(r.best)},
                         {"cards", r.cards},
                         {"measured", r.measured},
                         {"deployments", cells}});
  }
  Json cmp = Json::array();
  for (const auto& c : comparisons) {
    cmp.push_back({{"name", c.name},
                   {"workload", c.workload},
                   {"deployment", c.deployment},
                   {"against", c.against},
                   {"ratio", opt(c.ratio)},
                   {"note", c.note}});
  }
  return Json{{"format", "baton-sweep-table/1"}, {"experiment", experiment}, {"baseline", baseline},
              {"deployments", deployments},      {"workloads", rows_json},   {"comparisons", cmp},
              {"num_missing", num_missing}};
}

std::string SweepTable::to_markdown() const {
  std::string md = fmt::format("# Sweep `{}`: max sustainable QPS\n\n", experiment);
  md += fmt::format(
      "Each cell: the highest rate (req/s; a multi-turn workload's in sessions/s, as its name says) whose trial "
      "met every SLO target of the workload, and its "
      "ratio to `{}` (a workload that does not run `{}` is compared to its first deployment). Ratios and the "
      "best only between results of the same cards (`other cards`: not compared). `>= X`: every rate tried "
      "passed; `< X`: no rate passed, X the lowest tried; `partial`: a search not finished (its trials so "
      "far); `missing`: not run yet; `-`: not part of the experiment.\n\n",
      baseline, baseline);
  md += "| workload | SLO | cards (measured) |";
  for (const auto& d : deployments) md += " " + d + " |";
  md += " best |\n|---|---|---|";
  for (size_t i = 0; i < deployments.size(); ++i) md += "---:|";
  md += "---|\n";
  for (const auto& r : rows) {
    md += "| " + workload_text(r) + " | `" + r.slo + "` | " + row_cards_text(r) + " |";
    for (const auto& c : r.cells) md += " " + cell_text(c, true) + " |";
    md += " " + (r.best.empty() ? std::string("none") : r.best) + " |\n";
  }
  md +=
      "\n## The SLO target that broke first\n\nAt the lowest rate that failed, the target furthest over its "
      "limit.\n\n| workload |";
  for (const auto& d : deployments) md += " " + d + " |";
  md += "\n|---|";
  for (size_t i = 0; i < deployments.size(); ++i) md += "---|";
  md += "\n";
  for (const auto& r : rows) {
    md += "| " + r.workload + " |";
    for (const auto& c : r.cells) md += " " + broke_text(c, r.rate_unit) + " |";
    md += "\n";
  }
  if (!comparisons.empty()) {
    md += "\n## Comparisons\n\n| comparison | workload | max QPS ratio |\n|---|---|---:|\n";
    for (const auto& c : comparisons) {
      md += fmt::format("| {} (`{}` / `{}`) | {} | {} |\n", c.name, c.deployment, c.against, c.workload,
                        c.ratio ? fmt::format("{:.2f}x", *c.ratio) : "n/a (" + c.note + ")");
    }
  }
  if (num_missing > 0) {
    md += fmt::format("\n{} result(s) not run yet: `baton sweep EXPERIMENT --out DIR --resume` runs them.\n",
                      num_missing);
  }
  return md;
}

Result<SweepTable> write_sweep_report(const Experiment& e, const std::string& out_dir) {
  std::vector<std::vector<Json>> docs;
  BATON_ASSIGN_OR_RETURN(SweepTable t, build_sweep_table(e, out_dir, &docs));
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return unavailable("cannot create '{}': {}", out_dir, ec.message());
  BATON_RETURN_IF_ERROR(write_file((fs::path(out_dir) / "table.json").string(), t.to_json().dump(2) + "\n"));
  BATON_RETURN_IF_ERROR(write_file((fs::path(out_dir) / "table.md").string(), t.to_markdown()));

  std::string h = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>baton sweep: " + html_escape(e.name) +
                  "</title><style>body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}"
                  "table{border-collapse:collapse;background:#fff;font-size:13px}td,th{border:1px solid #ddd;"
                  "padding:4px 8px;text-align:right}th{background:#f0f0f0}td.t,th.t{text-align:left}"
                  "iframe{width:100%;height:1500px;border:1px solid #ddd;background:#fff}h2{margin-top:32px}"
                  "</style></head><body>";
  h += "<h1>baton sweep: " + html_escape(e.name) + "</h1>";
  h += "<p>Max sustainable QPS per workload and deployment under each workload's SLO; ratio to " +
       html_escape(t.baseline) + ". &ge; X: every rate tried passed; &lt; X: none passed.</p>";
  h += "<table><tr><th class=\"t\">workload</th><th class=\"t\">SLO</th><th class=\"t\">cards (measured)</th>";
  for (const auto& d : t.deployments) h += "<th>" + html_escape(d) + "</th>";
  h += "<th class=\"t\">best</th><th class=\"t\">broke first (per deployment)</th></tr>";
  for (const auto& r : t.rows) {
    h += "<tr><td class=\"t\"><a href=\"#w-" + html_escape(r.workload) + "\">" + html_escape(workload_text(r)) +
         "</a></td><td class=\"t\">" + html_escape(r.slo) + "</td><td class=\"t\">" + html_escape(row_cards_text(r)) +
         "</td>";
    std::string broke;
    for (const auto& c : r.cells) {
      h += "<td>" + html_escape(cell_text(c, true)) + "</td>";
      if (c.applies && c.present)
        broke += (broke.empty() ? "" : "; ") + c.deployment + ": " + broke_text(c, r.rate_unit);
    }
    h += "<td class=\"t\">" + html_escape(r.best.empty() ? "none" : r.best) + "</td><td class=\"t\">" +
         html_escape(broke) + "</td></tr>";
  }
  h += "</table>";
  if (!t.comparisons.empty()) {
    h += "<h2>Comparisons</h2><table><tr><th class=\"t\">comparison</th><th class=\"t\">workload</th>"
         "<th>max QPS ratio</th></tr>";
    for (const auto& c : t.comparisons) {
      h += "<tr><td class=\"t\">" + html_escape(c.name + " (" + c.deployment + " / " + c.against + ")") +
           "</td><td class=\"t\">" + html_escape(c.workload) + "</td><td>" +
           (c.ratio ? fmt::format("{:.2f}x", *c.ratio) : html_escape("n/a (" + c.note + ")")) + "</td></tr>";
    }
    h += "</table>";
  }
  for (size_t wi = 0; wi < e.workloads.size(); ++wi) {
    const auto& r = t.rows[wi];
    h += "<h2 id=\"w-" + html_escape(r.workload) + "\">" + html_escape(r.workload) + "</h2>";
    if (docs[wi].empty()) {
      h += "<p>No result on disk yet.</p>";
      continue;
    }
    std::string page = bench::render_html_report(docs[wi], r.baseline,
                                                 "workload " + r.workload + " (SLO " + r.slo + ")");
    // The same page on its own, for screenshots (scripts/report-images.sh) and links.
    fs::create_directories(fs::path(out_dir) / "workloads", ec);
    if (ec) return unavailable("cannot create '{}/workloads': {}", out_dir, ec.message());
    BATON_RETURN_IF_ERROR(write_file((fs::path(out_dir) / "workloads" / (r.workload + ".html")).string(), page));
    // Sized to its content once loaded (a srcdoc frame is same-origin), so a screenshot holds all of it.
    h += "<iframe title=\"" + html_escape(r.workload) +
         "\" onload=\"this.style.height=(this.contentDocument.documentElement.scrollHeight+20)+'px'\" srcdoc=\"" +
         html_escape(page) + "\"></iframe>";
  }
  h += "</body></html>\n";
  BATON_RETURN_IF_ERROR(write_file((fs::path(out_dir) / "report.html").string(), h));
  return t;
}

}  // namespace baton::deploy
