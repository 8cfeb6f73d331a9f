// A compiled PCRE2 pattern (UTF + UCP, JIT when available) for the regexes of
// tokenizer.json: Split pre-tokenizers and Replace normalizers/decoders. A
// "String" pattern of tokenizer.json is a literal, found with a plain search.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace baton::tokenizer {

class Regex {
 public:
  // kInvalidArgument naming the offset and PCRE2's message when the pattern
  // does not compile.
  static Result<std::unique_ptr<Regex>> compile(std::string_view pattern, bool literal);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the [start, end) byte ranges of the non-overlapping, non-empty
  // matches in valid UTF-8 text, left to right (an empty match steps over one
  // character, as the find iterators of HF tokenizers do).
  Status find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const;

 private:
  Regex() = default;
  void* code_ = nullptr;  // pcre2_code_8; null for a literal
  std::string literal_;
  bool jit_ = false;
};

}  // namespace baton::tokenizer
