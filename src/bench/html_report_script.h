// The script of the HTML report (html_report.h): it draws every chart from
// the result documents inlined in the page (id "baton-data").
//   - latency and goodput curves against the offered load, of completed
//     trials only (a trial stopped early is a certain FAIL, but its figures
//     cover only the requests that finished); each point marked met (circle)
//     or broken (cross) against the SLO, the SLO limits drawn in
//   - several deployments: their max sustainable load as bars; one
//     deployment: each trial's requested and offered rate, marked met,
//     broken or stopped early
//   - CDFs of TTFT, TPOT and E2E of one run per deployment, labelled with
//     that run's offered rate and verdict
// Every chart's title names what it shows and the SLO; the canvas carries the
// same text as its aria-label, and data-points / data-broken count its marked
// points (what the screenshot test reads back from the rendered page).
#pragma once

namespace baton::bench {

extern const char* const kHtmlReportScript;

}  // namespace baton::bench
