// The OpenAI /v1/completions wire format as the benchmark uses it: request
// bodies with exact output lengths (max_tokens = min_tokens, ignore_eos) and
// streamed usage, and the reading of each streamed chunk.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bench/workload.h"
#include "common/json.h"

namespace baton::bench {

struct CompletionBodyOptions {
  std::string model;
  PromptFormat prompt_format = PromptFormat::kTokenIds;
  int64_t vocab_size = 151936;
  bool stream = true;
  Json extra = Json::object();  // merged into the body last (overrides)
};

// {"model", "prompt": [ids] | "text", "max_tokens": n, "min_tokens": n,
//  "ignore_eos": true, "stream": true, "stream_options": {"include_usage": true},
//  "temperature": 0}
// `text_prompt`, when given, replaces the spec's prompt (multiturn text
// sessions, whose history holds the server's real answers).
std::string make_completion_body(const RequestSpec& spec, const CompletionBodyOptions& options,
                                 const std::string* text_prompt = nullptr);

struct ChunkInfo {
  bool done = false;     // "data: [DONE]"
  bool content = false;  // carries generated text (a non-empty choices[].text or delta.content)
  size_t text_bytes = 0;
  std::string text;  // the generated text of this chunk
  bool has_usage = false;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  std::string finish_reason;  // "" until the last choice chunk
  std::string error;          // an in-stream {"error": ...} or an unreadable chunk
};

// Reads one SSE "data:" payload of a streamed completion.
ChunkInfo parse_completion_chunk(std::string_view data);

}  // namespace baton::bench
