// The "normalizer" of tokenizer.json: none, NFC, or a Sequence of those.
#pragma once

#include <string>
#include <string_view>

#include "common/json.h"
#include "common/status.h"

namespace baton::tokenizer {

class Normalizer {
 public:
  // `spec` is the normalizer object (null means none). Other normalizer
  // types are kUnimplemented, naming the type.
  static Result<Normalizer> from_json(const Json& spec);

  bool is_identity() const { return !nfc_; }

  // Normalizes valid UTF-8 text into `out` (replacing its content).
  Status apply(std::string_view text, std::string& out) const;

 private:
  bool nfc_ = false;
};

// True when every code point of valid UTF-8 `text` is one that NFC leaves as
// it is whatever surrounds it (a conservative fast check: ASCII, Latin-1,
// common CJK, kana, Hangul syllables).
bool is_trivially_nfc(std::string_view text);

}  // namespace baton::tokenizer
