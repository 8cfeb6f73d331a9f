// GPT-2's byte-to-unicode table: each of the 256 byte values maps to a
// printable code point, so that byte-level BPE vocabularies are text
// ("Ġ" is the space byte 0x20, "Ċ" is '\n').
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace baton::tokenizer {

// The code point that stands for byte b.
char32_t byte_to_unicode(uint8_t b);

// The byte a code point stands for, or nullopt when it is not in the table.
std::optional<uint8_t> unicode_to_byte(char32_t cp);

// Converts a byte-level token string ("Ġhello") back to raw bytes (" hello").
// Returns nullopt when a character is outside the table (such a token is not
// reachable by byte-level encoding).
std::optional<std::string> byte_level_to_bytes(std::string_view token);

// Converts raw bytes to their byte-level string form.
std::string bytes_to_byte_level(std::string_view bytes);

}  // namespace baton::tokenizer
