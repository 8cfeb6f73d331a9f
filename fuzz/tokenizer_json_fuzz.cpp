// tokenizer.json loading (src/tokenizer: parse_tokenizer_json and
// Tokenizer::from_json_text): the input is a tokenizer.json. A tokenizer that
// loads must then encode and decode a mixed sample without failing hard.
// fuzz-link: baton_tokenizer
#include <cstdint>
#include <cstdlib>

#include "fuzz_util.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  baton::fuzz::quiet_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto tok = baton::Tokenizer::from_json_text(baton::fuzz::as_text(data, size), "");
  if (!tok.is_ok()) {
    if (tok.status().message().empty()) std::abort();  // an error must say what is wrong
    return 0;
  }
  static const char* kSample = "Hello, world! 123 h\xc3\xa9llo \xe4\xb8\xad\xe6\x96\x87 <|im_start|>  \n\tx";
  auto ids = (*tok)->encode(kSample);
  if (ids.is_ok()) (void)(*tok)->decode(*ids);
  return 0;
}
