// OpenAI response bodies and stream chunks for completions and chat
// completions, built from engine outputs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"
#include "engine/request_types.h"
#include "server/openai_request.h"
#include "server/prompt_codec.h"
#include "server/tool_call_parser.h"

namespace baton {

// What every body of one request repeats.
struct ResponseHeader {
  ApiKind kind = ApiKind::kCompletion;
  std::string id;  // "cmpl-..." or "chatcmpl-..."
  std::string model;
  int64_t created = 0;  // unix seconds
};

const char* finish_reason_text(FinishReason r);  // "stop", "length", "abort"; "" for kNone

// Accumulates logprobs in the shape of the request's API (completions:
// tokens/token_logprobs/top_logprobs/text_offset; chat: content[...]).
class LogprobsBuilder {
 public:
  LogprobsBuilder(ApiKind kind, const PromptCodec& codec) : kind_(kind), codec_(codec) {}
  // Appends one output's logprobs; text_offset advances by the output's text.
  void add(const std::vector<TokenLogprob>& logprobs, size_t text_offset);
  Json take();  // the accumulated object, then starts over
  bool empty() const { return num_tokens_ == 0; }

 private:
  ApiKind kind_;
  const PromptCodec& codec_;
  Json value_;
  int num_tokens_ = 0;
};

Json usage_json(int num_prompt_tokens, int num_output_tokens);

// A tool call as a response carries it.
struct ToolCallOut {
  std::string id;  // "chatcmpl-tool-..."
  ToolCall call;
};

// One finished choice of a response.
struct ChoiceResult {
  int index = 0;
  std::string text;  // chat: the content besides tool calls
  std::vector<ToolCallOut> tool_calls;
  Json logprobs;
  FinishReason reason = FinishReason::kStop;
};

// "tool_calls" when a choice that stopped by itself called tools, else the reason's name.
Json finish_reason_json(FinishReason reason, bool called_tools);

// The whole non-streaming body; choices in index order.
Json final_response(const ResponseHeader& h, std::vector<ChoiceResult> choices, int num_prompt_tokens,
                    int num_output_tokens, const Json& kv_transfer_params);
// One choice (index 0), without tool calls.
Json final_response(const ResponseHeader& h, const std::string& text, Json logprobs, FinishReason reason,
                    int num_prompt_tokens, int num_output_tokens, const Json& kv_transfer_params);

// Stream chunks. delta_text/logprobs may be empty; reason kNone means not final.
Json stream_chunk(const ResponseHeader& h, const std::string& delta_text, Json logprobs, FinishReason reason,
                  bool include_usage_field, int index = 0, bool called_tools = false);
// A chat chunk carrying completed tool calls; `first_call_index` numbers them
// within the choice (OpenAI's tool_calls[].index).
Json tool_calls_chunk(const ResponseHeader& h, int index, const std::vector<ToolCallOut>& calls, int first_call_index,
                      bool include_usage_field);
// The serialized chunk of a non-final delta without logprobs, the hot path
// of streaming: the parts around the text are rendered once per request.
// Parses to the same JSON as stream_chunk(h, text, nullptr, kNone, usage).
class DeltaChunkWriter {
 public:
  DeltaChunkWriter(const ResponseHeader& h, bool include_usage_field, int index = 0);
  std::string chunk(const std::string& delta_text) const;

 private:
  std::string prefix_, suffix_;
};

Json chat_role_chunk(const ResponseHeader& h, bool include_usage_field, int index = 0);
Json usage_chunk(const ResponseHeader& h, int num_prompt_tokens, int num_output_tokens);

}  // namespace baton
