// UTF-8 helpers for the tokenizer: validation with the position of the first
// bad byte, lossy decoding with the same replacement rule as Rust's
// String::from_utf8_lossy (what HF tokenizers use), and the split point that
// holds back an incomplete trailing sequence for streaming.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace baton::tokenizer {

// Result of reading one sequence at a position.
struct Utf8Step {
  enum class Kind { kValid, kInvalid, kIncomplete };
  Kind kind;
  size_t num_bytes;         // kValid: the sequence; kInvalid/kIncomplete: bytes to replace by one U+FFFD
  char32_t code_point = 0;  // kValid only
};

// Reads the sequence that starts at bytes[pos] (pos < size).
Utf8Step utf8_step(std::string_view bytes, size_t pos);

// Offset of the first byte that makes `bytes` invalid UTF-8, or nullopt.
std::optional<size_t> find_invalid_utf8(std::string_view bytes);

// Appends `bytes` to out, each maximal invalid subsequence replaced by U+FFFD.
void append_utf8_lossy(std::string& out, std::string_view bytes);

// Length of the longest prefix of `bytes` after which a left-to-right decoder
// is between sequences: everything but a trailing incomplete (yet possibly
// valid) sequence. Decoding that prefix lossily gives the same text as the
// corresponding part of decoding all of `bytes`.
size_t utf8_complete_prefix(std::string_view bytes);

// Rust's char::is_whitespace (the Unicode White_Space property), which HF
// tokenizers uses for stripping.
bool is_unicode_whitespace(char32_t cp);

// Appends the UTF-8 encoding of a code point (must be a valid scalar value).
void append_utf8(std::string& out, char32_t code_point);

}  // namespace baton::tokenizer
