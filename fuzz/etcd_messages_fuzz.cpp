// What etcd's JSON gateway answers (src/discovery/etcd_messages.h): the input
// is read as each kind of answer (a lease grant, a keep-alive, a range read,
// an error answer) and, line by line, as watch messages. Each must parse or
// return an error that says what is wrong: etcd is a peer, and its answers
// reach the keep-alive and watch threads of every instance and router.
// fuzz-link: baton_discovery baton_common
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "discovery/etcd_messages.h"
#include "fuzz_util.h"

namespace {

template <typename T>
void check(const baton::Result<T>& r) {
  if (!r.is_ok() && r.status().message().empty()) std::abort();  // an error must say what is wrong
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  baton::fuzz::quiet_logs();
  const std::string_view text = baton::fuzz::as_text(data, size);
  check(baton::discovery::parse_lease_grant(text));
  check(baton::discovery::parse_keep_alive(text));
  auto range = baton::discovery::parse_range(text);
  check(range);
  if (range.is_ok())
    for (const auto& kv : range->kvs) (void)baton::discovery::base64_encode(kv.key);
  if (baton::discovery::parse_error_answer(text).size() > 200) std::abort();
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    check(baton::discovery::parse_watch_message(text.substr(start, end - start)));
    start = end + 1;
  }
  return 0;
}
