// Chart.js (node_modules/chart.js/dist/chart.umd.min.js, MIT), embedded in
// the binary at build time so that HTML reports are self-contained.
#pragma once

#include <string_view>

namespace baton::bench {

// The whole minified UMD bundle.
std::string_view chart_js_source();

}  // namespace baton::bench
