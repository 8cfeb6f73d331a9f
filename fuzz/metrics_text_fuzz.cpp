// Prometheus text parser (src/common/metrics_text): the input is a /metrics
// body. Parsing must return a value or an error, and a sample line that
// parses must keep its name.
// fuzz-link: baton_common
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/metrics_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto sums = baton::sum_metrics_by_name(text);
  if (sums.is_ok()) {
    for (const auto& [name, value] : *sums) {
      if (name.empty()) std::abort();
    }
  } else if (sums.status().message().empty()) {
    std::abort();  // an error must say what is wrong
  }
  return 0;
}
