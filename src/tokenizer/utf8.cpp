#include "tokenizer/utf8.h"

namespace baton::tokenizer {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Valid range of the second byte given the lead byte (Unicode table 3-7).
bool second_byte_ok(uint8_t lead, uint8_t b) {
  switch (lead) {
    case 0xE0: return b >= 0xA0 && b <= 0xBF;
    case 0xED: return b >= 0x80 && b <= 0x9F;
    case 0xF0: return b >= 0x90 && b <= 0xBF;
    case 0xF4: return b >= 0x80 && b <= 0x8F;
    default: return b >= 0x80 && b <= 0xBF;
  }
}

// The first byte at or after `i` that is not ASCII (bytes.size() if none):
// 8 bytes at a time while all of them are ASCII.
size_t skip_ascii(std::string_view bytes, size_t i) {
  const size_t n = bytes.size();
  while (i + 8 <= n) {
    uint64_t w;
    __builtin_memcpy(&w, bytes.data() + i, 8);
    if (w & 0x8080808080808080ull) break;
    i += 8;
  }
  while (i < n && static_cast<uint8_t>(bytes[i]) < 0x80) ++i;
  return i;
}

}  // namespace

Utf8Step utf8_step(std::string_view bytes, size_t pos) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  const uint8_t lead = p[pos];
  if (lead < 0x80) return {Utf8Step::Kind::kValid, 1, lead};
  size_t len;
  char32_t cp;
  if (lead >= 0xC2 && lead <= 0xDF) {
    len = 2;
    cp = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    len = 3;
    cp = lead & 0x0F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    len = 4;
    cp = lead & 0x07;
  } else {
    return {Utf8Step::Kind::kInvalid, 1};
  }
  for (size_t k = 1; k < len; ++k) {
    if (pos + k >= n) return {Utf8Step::Kind::kIncomplete, k};
    const uint8_t b = p[pos + k];
    const bool ok = k == 1 ? second_byte_ok(lead, b) : (b >= 0x80 && b <= 0xBF);
    if (!ok) return {Utf8Step::Kind::kInvalid, k};
    cp = (cp << 6) | (b & 0x3F);
  }
  return {Utf8Step::Kind::kValid, len, cp};
}

std::optional<size_t> find_invalid_utf8(std::string_view bytes) {
  for (size_t i = skip_ascii(bytes, 0); i < bytes.size(); i = skip_ascii(bytes, i)) {
    Utf8Step s = utf8_step(bytes, i);
    if (s.kind == Utf8Step::Kind::kInvalid) {
      const auto lead = static_cast<uint8_t>(bytes[i]);
      const bool lead_ok = lead >= 0xC2 && lead <= 0xF4;
      return lead_ok ? i + s.num_bytes : i;  // the lead itself, or the first bad continuation byte
    }
    if (s.kind == Utf8Step::Kind::kIncomplete) return i;
    i += s.num_bytes;
  }
  return std::nullopt;
}

void append_utf8_lossy(std::string& out, std::string_view bytes) {
  size_t i = 0;
  size_t run_start = 0;  // start of the current run of valid bytes
  const size_t n = bytes.size();
  while ((i = skip_ascii(bytes, i)) < n) {
    Utf8Step s = utf8_step(bytes, i);
    if (s.kind == Utf8Step::Kind::kValid) {
      i += s.num_bytes;
      continue;
    }
    out.append(bytes.substr(run_start, i - run_start));
    out.append(kReplacement);
    i += s.num_bytes;
    run_start = i;
  }
  out.append(bytes.substr(run_start, n - run_start));
}

size_t utf8_complete_prefix(std::string_view bytes) {
  const size_t n = bytes.size();
  for (size_t i = skip_ascii(bytes, 0); i < n; i = skip_ascii(bytes, i)) {
    Utf8Step s = utf8_step(bytes, i);
    if (s.kind == Utf8Step::Kind::kIncomplete) return i;  // reaches the end
    i += s.num_bytes;
  }
  return n;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_unicode_whitespace(char32_t cp) {
  switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000: return true;
    default: return cp >= 0x2000 && cp <= 0x200A;
  }
}

}  // namespace baton::tokenizer
