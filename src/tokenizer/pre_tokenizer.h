// The "pre_tokenizer" of tokenizer.json: Split by a regex (behavior
// Isolated), ByteLevel, or a Sequence of those. The regex runs in PCRE2
// (UTF + UCP, JIT) exactly as the file gives it. ByteLevel's byte-to-unicode
// mapping is only a spelling, so pieces stay raw bytes here.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace baton::tokenizer {

class SplitRegex;

class PreTokenizer {
 public:
  static Result<PreTokenizer> from_json(const Json& spec);

  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // Splits valid UTF-8 text into pieces (views into text), appended to out.
  Status split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  PreTokenizer();
  std::vector<std::unique_ptr<SplitRegex>> regexes_;  // applied in order, each refining the pieces
};

}  // namespace baton::tokenizer
