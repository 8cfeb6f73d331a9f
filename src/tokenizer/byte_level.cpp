#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace baton::tokenizer {

namespace {

struct Tables {
  std::array<char32_t, 256> to_unicode{};
  std::array<int16_t, 512> from_unicode{};  // code points < 512 only; -1 = none

  constexpr Tables() {
    for (auto& v : from_unicode) v = -1;
    // Printable bytes map to themselves; the rest to 256, 257, ... in order.
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_unicode[b] = printable ? static_cast<char32_t>(b) : next++;
      from_unicode[to_unicode[b]] = static_cast<int16_t>(b);
    }
  }
};

constexpr Tables kTables;

}  // namespace

char32_t byte_to_unicode(uint8_t b) { return kTables.to_unicode[b]; }

std::optional<uint8_t> unicode_to_byte(char32_t cp) {
  if (cp >= kTables.from_unicode.size() || kTables.from_unicode[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(kTables.from_unicode[cp]);
}

std::optional<std::string> byte_level_to_bytes(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    Utf8Step s = utf8_step(token, i);
    if (s.kind != Utf8Step::Kind::kValid) return std::nullopt;
    auto b = unicode_to_byte(s.code_point);
    if (!b) return std::nullopt;
    out.push_back(static_cast<char>(*b));
    i += s.num_bytes;
  }
  return out;
}

std::string bytes_to_byte_level(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) append_utf8(out, byte_to_unicode(static_cast<uint8_t>(c)));
  return out;
}

}  // namespace baton::tokenizer
