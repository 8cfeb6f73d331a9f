// The self-contained HTML report: Chart.js inlined, data inlined, no network.
// Charts: TTFT, TPOT and E2E (p50 and p90) against offered QPS for each
// deployment with the SLO limit drawn in; max sustainable QPS as bars;
// latency CDFs of TTFT, TPOT and E2E; a summary table and the metric
// definitions.
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
