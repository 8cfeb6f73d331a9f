// The assembler includes the file named by BATON_CHART_JS (set by
// src/CMakeLists.txt) into .rodata: no generated source, no runtime lookup.
#include "bench/chart_js_asset.h"

#ifndef BATON_CHART_JS
#error "BATON_CHART_JS must name node_modules/chart.js/dist/chart.umd.min.js (see src/CMakeLists.txt)"
#endif

__asm__(
    ".section .rodata\n"
    ".balign 16\n"
    ".global baton_chart_js_begin\n"
    "baton_chart_js_begin:\n"
    ".incbin \"" BATON_CHART_JS
    "\"\n"
    ".global baton_chart_js_end\n"
    "baton_chart_js_end:\n"
    ".byte 0\n"
    ".previous\n");

extern "C" const char baton_chart_js_begin[];
extern "C" const char baton_chart_js_end[];

namespace baton::bench {

std::string_view chart_js_source() {
  return std::string_view(baton_chart_js_begin, static_cast<size_t>(baton_chart_js_end - baton_chart_js_begin));
}

}  // namespace baton::bench
