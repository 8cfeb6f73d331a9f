// IncrementalDetokenizer: turns a stream of generated token ids into text
// deltas for streaming. Byte-level BPE decoding is a concatenation of token
// bytes, so the state is just the bytes of a trailing incomplete UTF-8
// sequence (at most 3), held back until the next token completes it. The
// concatenated deltas (plus finish()) equal Tokenizer::decode of all ids,
// and no delta ever holds a broken UTF-8 sequence.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace baton {

class Tokenizer;

class IncrementalDetokenizer {
 public:
  // The tokenizer must outlive this object.
  IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens);

  // Feeds one id; returns the text it completes (possibly empty). Negative
  // ids are kInvalidArgument.
  Result<std::string> step(int32_t id);

  // Ends the stream: held-back bytes that never completed a character come
  // out as U+FFFD (as a full decode gives them). Returns the remaining text.
  std::string finish();

  // All text emitted so far.
  const std::string& text() const { return text_; }
  size_t num_pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  std::string pending_;  // bytes of an incomplete trailing sequence
  std::string text_;
};

}  // namespace baton
