// Parsing and validation of OpenAI /v1/completions and /v1/chat/completions
// bodies (with vLLM's sampling extensions) into a GenerationRequest.
// Unknown fields are ignored (as vLLM does); known fields are type- and
// range-checked, and every failure names the offending field. Known fields
// whose effect baton lacks are refused by name, not ignored (guided decoding,
// a priority other than 0); spaces_between_special_tokens is accepted and has
// no effect, as with vLLM's fast tokenizers.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "engine/request_types.h"
#include "server/api_error.h"
#include "server/chat_request.h"
#include "server/prompt_codec.h"
#include "server/tool_call_parser.h"

namespace baton {

enum class ApiKind { kCompletion, kChat };

struct OpenAiRequest {
  ApiKind kind = ApiKind::kCompletion;
  std::string model;  // "" when absent
  bool stream = false;
  bool include_usage = false;
  // Completions: logprobs = N (>= 0) or -1; chat: logprobs bool + top_logprobs.
  bool want_logprobs = false;
  int top_logprobs = 0;
  // Prompt: text to encode, or ids given directly (completions only).
  std::optional<std::string> prompt_text;
  std::vector<int32_t> prompt_ids;
  ChatFields chat;                    // chat only
  bool add_generation_prompt = true;  // chat only
  // Chat with tools: how the output is read back into tool_calls (kNone: not
  // at all), and the call opening the prompt ends with (tool_choice required
  // or named), which the output parser starts from.
  ToolCallFormat tool_format = ToolCallFormat::kNone;
  std::string tool_call_prefix;
  int n = 1;                                // choices to sample, sharing the prompt
  bool max_tokens_given = false;            // chat without max_tokens fills the context
  GenerationRequest gen;                    // request_id and prompt_ids filled later
  std::vector<std::string> ignored_fields;  // unknown fields, for a warning
};

// Either a parsed request or the 400 to answer.
struct ParseResult {
  std::optional<OpenAiRequest> request;
  ApiError error;
};

ParseResult parse_openai_request(ApiKind kind, const Json& body);

// The most choices one request may ask for (n): each is a sequence in the engine.
inline constexpr int kMaxChoices = 128;

// Tokenizes the prompt (chat: renders the template first, with the tools
// unless tool_choice is none), checks token ids against the vocabulary and
// prompt + max_tokens against max_model_len, and fills
// request->gen.prompt_ids and the chat default max_tokens. `tool_format` is
// the server's tool-call parser: tools with tool_choice other than none need
// one.
std::optional<ApiError> prepare_prompt(OpenAiRequest* request, const PromptCodec& codec, int max_model_len,
                                       ToolCallFormat tool_format = ToolCallFormat::kNone);

}  // namespace baton
