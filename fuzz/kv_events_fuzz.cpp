// The router's KV-event reader (src/router/kv_index): the input is what an
// instance's GET /v1/kv/events stream could carry, one event per line
// (snapshots, batches, anything). Each apply must return OK or an error that
// says what is wrong; whatever was applied, the view of a prompt never claims
// more cached blocks than the prompt has, and an instance whose stream broke
// is not synced.
// fuzz-link: baton_router baton_kv baton_common
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "router/kv_index.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  baton::fuzz::quiet_logs();
  const std::string_view text = baton::fuzz::as_text(data, size);
  const std::string url = "http://instance:8000";
  baton::router::KvIndex index;
  bool broken = false;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    baton::Status st = index.apply(url, text.substr(start, end - start));
    if (!st.is_ok() && st.message().empty()) std::abort();  // an error must say what is wrong
    broken = !st.is_ok();
    start = end + 1;
  }
  std::vector<int32_t> prompt;
  for (int32_t i = 0; i < 100; ++i) prompt.push_back(i % 7);
  const baton::router::PromptHashes hashes(prompt);
  const baton::router::KvView view = index.view(url, hashes);
  if (broken && view.synced) std::abort();  // a failed apply drops the state
  if (view.overlap_blocks < 0) std::abort();
  if (view.synced && view.block_size > 0 && view.overlap_blocks > static_cast<int>(prompt.size()) / view.block_size) {
    std::abort();
  }
  for (const auto& e : index.entries()) {
    if (e.url != url) std::abort();
  }
  return 0;
}
