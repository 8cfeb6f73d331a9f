// The self-contained HTML report: Chart.js inlined, data inlined, no network.
// A headline per deployment (a search's max sustainable offered load, or a
// single run's verdict), warnings that make figures suspect (prefix-cache
// hits), the charts (html_report_script.h: latency and goodput curves of the
// completed trials, marked met or broken; the trials or the max-load bars;
// CDFs labelled with their run's rate), the runs table with notes (client
// lag, shortened warm-ups) after it, and the metric definitions.
#pragma once

#include <string>
#include <vector>

#include "common/json.h"

namespace baton::bench {

// Escapes text for HTML content and attribute values.
std::string html_escape(const std::string& s);

// `documents` are result documents (bench_result.h); `baseline` a label or "".
std::string render_html_report(const std::vector<Json>& documents, const std::string& baseline,
                               const std::string& title);

}  // namespace baton::bench
