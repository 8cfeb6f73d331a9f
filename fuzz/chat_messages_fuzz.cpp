// Chat messages parser (src/tokenizer/chat_template: parse_chat_messages):
// the input is the JSON of a request's "messages". Any JSON must give
// messages or an error naming the problem.
// fuzz-link: baton_tokenizer
#include <cstdint>
#include <cstdlib>

#include "common/json.h"
#include "fuzz_util.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto messages = baton::parse_json(baton::fuzz::as_text(data, size), "messages");
  if (!messages.is_ok()) return 0;
  auto parsed = baton::parse_chat_messages(*messages);
  if (!parsed.is_ok() && parsed.status().message().empty()) std::abort();
  return 0;
}
