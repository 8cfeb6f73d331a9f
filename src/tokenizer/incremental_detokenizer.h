// IncrementalDetokenizer: turns a stream of generated token ids into text
// deltas for streaming. The concatenated deltas (plus finish()) equal
// Tokenizer::decode of all ids, and no delta ever holds a broken UTF-8
// sequence. Two ways, by the tokenizer's decoder:
//  - byte-level BPE decodes by concatenation, so the state is just the bytes
//    of a trailing incomplete UTF-8 sequence (at most 3), held back until the
//    next token completes it;
//  - other decoders (SentencePiece's byte fallback, Strip, Metaspace) depend
//    on neighbouring tokens, so, as HF's DecodeStream does, the tokens since
//    the last emitted prefix are decoded together and the text past that
//    prefix is emitted once it does not end in U+FFFD (an incomplete <0xXX>
//    run).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace baton {

class Tokenizer;

class IncrementalDetokenizer {
 public:
  // The tokenizer must outlive this object.
  IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens);

  // Feeds the end of the prompt as context without emitting it, so that the
  // first generated token reads as it does after that text (a SentencePiece
  // "▁Hello" is " Hello" there, not "Hello" as at the start of a text), as
  // vLLM primes its detokenizer. Call before the first step().
  Status prime(std::span<const int32_t> prompt_ids);

  // Feeds one id; returns the text it completes (possibly empty). Negative
  // ids are kInvalidArgument.
  Result<std::string> step(int32_t id);

  // Ends the stream: held-back bytes that never completed a character come
  // out as U+FFFD (as a full decode gives them). Returns the remaining text.
  std::string finish();

  // All text emitted so far.
  const std::string& text() const { return text_; }
  // Bytes (byte-level) or tokens (other decoders) held back.
  size_t num_pending_bytes() const { return pending_.size() + ids_.size() - prefix_index_; }

 private:
  Result<std::string> step_in_context(int32_t id);

  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  bool concat_;          // the tokenizer decodes by concatenation
  std::string pending_;  // concat: bytes of an incomplete trailing sequence
  // Other decoders: the ids since the start of the emitted prefix, that
  // prefix's text, and how many of ids_ it covers.
  std::vector<int32_t> ids_;
  std::string prefix_;
  size_t prefix_index_ = 0;
  std::string text_;
};

}  // namespace baton
