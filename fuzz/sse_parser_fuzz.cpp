// SSE parser (src/http/sse_parser): the input is an event stream. It is fed
// whole, then again in pieces whose sizes come from the input itself; both
// must deliver the same events (the parser promises any split works).
// fuzz-link: baton_http
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "http/sse_parser.h"

namespace {

std::vector<baton::http::SseEvent> parse(std::string_view stream, size_t seed) {
  std::vector<baton::http::SseEvent> events;
  baton::http::SseParser parser([&](const baton::http::SseEvent& e) { events.push_back(e); });
  size_t i = 0;
  while (i < stream.size()) {
    // seed 0: one piece; else pieces of 1..16 bytes, sizes from the bytes.
    size_t n = seed == 0 ? stream.size() : 1 + (static_cast<uint8_t>(stream[i]) + seed) % 16;
    n = std::min(n, stream.size() - i);
    parser.feed(stream.substr(i, n));
    i += n;
  }
  parser.finish();
  if (parser.num_events() != events.size()) std::abort();
  return events;
}

bool same(const std::vector<baton::http::SseEvent>& a, const std::vector<baton::http::SseEvent>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].event != b[i].event || a[i].data != b[i].data || a[i].id != b[i].id) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view stream(reinterpret_cast<const char*>(data), size);
  const auto whole = parse(stream, 0);
  if (!same(whole, parse(stream, 1)) || !same(whole, parse(stream, 7))) std::abort();
  return 0;
}
