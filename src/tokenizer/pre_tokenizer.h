// The "pre_tokenizer" of tokenizer.json, as HF tokenizers runs it: Split (a
// regex or a literal string, with any of the five delimiter behaviours and
// invert), ByteLevel (add_prefix_space, use_regex), Metaspace (replacement,
// prepend_scheme, split), Digits, and Sequences of those; null means none
// (the whole text is one piece). Regexes run in PCRE2 exactly as the file
// gives them. ByteLevel's byte-to-unicode mapping is only a spelling, so
// pieces stay raw bytes here and the BPE model works on bytes (byte_level()).
// Other types are kUnimplemented, naming the type.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace baton::tokenizer {

class Regex;

// Strings made by steps that rewrite text (Metaspace, ByteLevel's prefix
// space); pieces may point into them, so they live as long as the pieces.
using PieceArena = std::deque<std::string>;

class PreTokenizer {
 public:
  static Result<PreTokenizer> from_json(const Json& spec);

  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // True when a ByteLevel step maps the pieces to bytes for the model.
  bool byte_level() const { return byte_level_; }

  // Splits valid UTF-8 text into pieces, appended to out: views into text or
  // into strings appended to arena. at_input_start says that text begins at
  // offset 0 of the encoded input (Metaspace's prepend_scheme "first").
  Status split(std::string_view text, bool at_input_start, std::vector<std::string_view>& out, PieceArena& arena) const;

  struct Step;  // one pre-tokenizer of the sequence (defined in the .cpp)

 private:
  PreTokenizer();
  std::vector<std::unique_ptr<Step>> steps_;  // applied in order, each refining the pieces
  bool byte_level_ = false;
};

}  // namespace baton::tokenizer
