// Added tokens of tokenizer.json ("added_tokens"): special tokens such as
// <|im_start|> and plain added tokens such as <think>. They are found inside
// text before pre-tokenization (leftmost, then longest match), honouring each
// token's lstrip / rstrip / single_word flags; tokens with normalized=false
// are matched on the raw text, those with normalized=true on normalized text.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace baton::tokenizer {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  // What is matched in the text and handed to the decoder: the content, run
  // through the normalizer when `normalized` (as HF caches it).
  std::string pattern;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

// A piece of input: either text to tokenize or one added token.
struct Segment {
  std::string_view text;  // empty when token_id >= 0
  int32_t token_id = -1;
};

class AddedVocabulary {
 public:
  static Result<AddedVocabulary> from_json(const Json& added_tokens);

  const std::vector<AddedToken>& tokens() const { return tokens_; }

  // Splits text into text segments and added-token segments, matching only
  // the tokens whose `normalized` flag equals `normalized`. Appends to out.
  void split(std::string_view text, bool normalized, std::vector<Segment>& out) const;

  bool has_normalized_tokens() const { return num_normalized_ > 0; }

  // Sets each normalized token's pattern to its content after `normalize`
  // (a callable from content to Result<std::string>).
  template <typename F>
  Status normalize_patterns(F&& normalize) {
    for (auto& t : tokens_) {
      if (!t.normalized) continue;
      Result<std::string> p = normalize(t.content);
      if (!p.is_ok()) return p.status();
      t.pattern = std::move(p).value();
    }
    index();
    return Status::ok();
  }

 private:
  void index();  // fills by_first_byte_ from the patterns
  // A match of token `index` at [start, end) of the text, after stripping.
  bool match_at(std::string_view text, size_t pos, bool normalized, size_t& token_index) const;

  std::vector<AddedToken> tokens_;
  // For each first byte, token indices sorted by decreasing content length.
  std::array<std::vector<uint32_t>, 256> by_first_byte_;
  size_t num_normalized_ = 0;
};

}  // namespace baton::tokenizer
