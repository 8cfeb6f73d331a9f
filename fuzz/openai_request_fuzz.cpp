// OpenAI request parser (src/server/openai_request): the input is an HTTP
// body for /v1/completions and /v1/chat/completions. It is parsed as serve
// parses it (parse_json, then parse_openai_request for both kinds), then the
// prompt is prepared against a byte-level codec (ids = bytes, chat = the
// parsed messages joined), which runs the id and length checks. A refused
// request must be a 4xx whose reply serialises.
// fuzz-link: baton_server
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/json.h"
#include "fuzz_util.h"
#include "server/openai_request.h"
#include "tokenizer/chat_template.h"

namespace {

class ByteCodec : public baton::PromptCodec {
 public:
  baton::Result<std::vector<int32_t>> encode(std::string_view text, bool) const override {
    return std::vector<int32_t>(text.begin(), text.end());
  }
  std::string token_text(int32_t id) const override { return std::string(1, static_cast<char>(id)); }
  baton::Result<std::string> render_chat(const baton::Json& messages, bool add_generation_prompt) const override {
    BATON_ASSIGN_OR_RETURN(auto parsed, baton::parse_chat_messages(messages));
    std::string out;
    for (const auto& m : parsed) out += m.role + ":" + m.content + "\n";
    if (add_generation_prompt) out += "assistant:";
    return out;
  }
  int vocab_size() const override { return 256; }
};

void check_error(const baton::ApiError& error) {
  if (error.http_status < 400 || error.http_status >= 500) std::abort();
  (void)baton::dump_json(error.to_json());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  baton::fuzz::quiet_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto body = baton::parse_json(baton::fuzz::as_text(data, size), "request body");
  if (!body.is_ok()) return 0;
  static const ByteCodec codec;
  for (baton::ApiKind kind : {baton::ApiKind::kCompletion, baton::ApiKind::kChat}) {
    baton::ParseResult parsed = baton::parse_openai_request(kind, *body);
    if (!parsed.request) {
      check_error(parsed.error);
      continue;
    }
    if (auto error = baton::prepare_prompt(&*parsed.request, codec, /*max_model_len=*/512)) check_error(*error);
  }
  return 0;
}
