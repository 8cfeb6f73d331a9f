// The "normalizer" of tokenizer.json, as HF tokenizers runs it: NFC, NFD,
// NFKC, NFKD (utf8proc), Lowercase, Prepend, Replace (a literal String or a
// Regex), Strip, and Sequences of those; null means none. Other types are
// kUnimplemented, naming the type.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace baton::tokenizer {

class Normalizer {
 public:
  static Result<Normalizer> from_json(const Json& spec);

  Normalizer();
  Normalizer(Normalizer&&) noexcept;
  Normalizer& operator=(Normalizer&&) noexcept;
  ~Normalizer();

  bool is_identity() const { return steps_.empty(); }

  // Normalizes valid UTF-8 text into `out` (replacing its content).
  Status apply(std::string_view text, std::string& out) const;

  struct Step;  // one normalizer of the sequence (defined in the .cpp)

 private:
  std::vector<std::unique_ptr<Step>> steps_;
};

// True when every code point of valid UTF-8 `text` is one that NFC leaves as
// it is whatever surrounds it (a conservative fast check: ASCII, Latin-1,
// common CJK, kana, Hangul syllables).
bool is_trivially_nfc(std::string_view text);

}  // namespace baton::tokenizer
