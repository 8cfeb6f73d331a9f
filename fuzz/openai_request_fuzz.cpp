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
#include "server/tool_call_parser.h"
#include "tokenizer/chat_template.h"

namespace {

class ByteCodec : public baton::PromptCodec {
 public:
  baton::Result<std::vector<int32_t>> encode(std::string_view text, bool) const override {
    return std::vector<int32_t>(text.begin(), text.end());
  }
  std::string token_text(int32_t id) const override { return std::string(1, static_cast<char>(id)); }
  baton::Result<std::string> render_chat(const baton::ChatRenderInput& input) const override {
    BATON_ASSIGN_OR_RETURN(auto parsed, baton::parse_chat_messages(input.messages));
    std::string out;
    if (input.tools.is_array()) out += baton::dump_json(baton::Json::parse(input.tools.dump())) + "\n";
    for (const auto& m : parsed) out += m.role + ":" + m.content + "\n";
    if (input.add_generation_prompt) out += "assistant:";
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
  std::string_view text = baton::fuzz::as_text(data, size);
  // The same bytes as a model's output: every tool-call format, whole and
  // streamed in pieces, must agree and never crash.
  for (baton::ToolCallFormat f :
       {baton::ToolCallFormat::kHermes, baton::ToolCallFormat::kLlama3Json, baton::ToolCallFormat::kDeepSeekV3}) {
    baton::ParsedToolOutput whole = baton::parse_tool_calls(f, text);
    baton::ToolCallStreamParser stream(f);
    size_t num_calls = 0;
    for (size_t i = 0; i < text.size(); i += 7) num_calls += stream.push(text.substr(i, 7)).tool_calls.size();
    num_calls += stream.finish().tool_calls.size();
    if (!stream.failed() && num_calls != whole.tool_calls.size()) std::abort();
  }
  auto body = baton::parse_json(text, "request body");
  if (!body.is_ok()) return 0;
  static const ByteCodec codec;
  for (baton::ApiKind kind : {baton::ApiKind::kCompletion, baton::ApiKind::kChat}) {
    baton::ParseResult parsed = baton::parse_openai_request(kind, *body);
    if (!parsed.request) {
      check_error(parsed.error);
      continue;
    }
    if (auto error = baton::prepare_prompt(&*parsed.request, codec, /*max_model_len=*/512,
                                           baton::ToolCallFormat::kHermes)) {
      check_error(*error);
    }
  }
  return 0;
}
