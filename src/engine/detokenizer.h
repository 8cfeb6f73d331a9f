// The engine's view of a tokenizer's decoder: one incremental stream per
// request, which turns output tokens into text without ever splitting a UTF-8
// character. The CLI adapts the tokenizer layer's IncrementalDetokenizer to
// this; an engine without one serves token-id-only requests.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace baton {

class DetokenizerStream {
 public:
  virtual ~DetokenizerStream() = default;
  // The text completed by `token_id` (may be empty while a character is
  // incomplete).
  virtual std::string add(int32_t token_id) = 0;
  // What is left at the end (e.g. an incomplete character, as U+FFFD).
  virtual std::string flush() { return {}; }
};

class Detokenizer {
 public:
  virtual ~Detokenizer() = default;
  // A stream for one request's output, given its prompt (some decoders need
  // the preceding tokens to decode the first output token right); special
  // tokens give no text when skip_special_tokens.
  virtual std::unique_ptr<DetokenizerStream> open_stream(std::span<const int32_t> prompt_ids,
                                                         bool skip_special_tokens) const = 0;
};

}  // namespace baton
