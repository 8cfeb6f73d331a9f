#include "tokenizer/normalizer.h"

#include <cstdlib>

#include <utf8proc.h>

#include "tokenizer/utf8.h"

namespace baton::tokenizer {

namespace {

Status add_spec(const Json& spec, bool& nfc) {
  if (spec.is_null()) return Status::ok();
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) {
    return invalid_argument("tokenizer.json: normalizer has no 'type'");
  }
  const auto& type = spec["type"].get_ref<const std::string&>();
  if (type == "NFC") {
    nfc = true;
    return Status::ok();
  }
  if (type == "Sequence") {
    auto it = spec.find("normalizers");
    if (it == spec.end() || !it->is_array()) {
      return invalid_argument("tokenizer.json: Sequence normalizer has no 'normalizers' array");
    }
    for (const auto& sub : *it) BATON_RETURN_IF_ERROR(add_spec(sub, nfc));
    return Status::ok();
  }
  return unimplemented("tokenizer.json: normalizer type '{}' is not supported (only NFC)", type);
}

// Code points in these ranges have NFC_Quick_Check=Yes, combining class 0 and
// are never the second half of a composition (checked against the Unicode
// data): a string made only of them is already in NFC.
bool is_stable_code_point(char32_t cp) {
  if (cp < 0x300) return true;
  if (cp < 0x3000) {
    return (cp >= 0x0391 && cp <= 0x03C9) || (cp >= 0x0400 && cp <= 0x0482) || (cp >= 0x048A && cp <= 0x04FF) ||
           (cp >= 0x0621 && cp <= 0x063A) || (cp >= 0x0641 && cp <= 0x064A) || (cp >= 0x200B && cp <= 0x2027) ||
           (cp >= 0x2030 && cp <= 0x205E) || (cp >= 0x2600 && cp <= 0x27BF);
  }
  return (cp <= 0x3029) || (cp >= 0x3041 && cp <= 0x3096) || (cp >= 0x30A1 && cp <= 0x30FA) ||
         (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7A3) || cp == 0xFE0F ||
         (cp >= 0xFF01 && cp <= 0xFF5E) || (cp >= 0x1F300 && cp <= 0x1FAFF);
}

}  // namespace

Result<Normalizer> Normalizer::from_json(const Json& spec) {
  Normalizer n;
  BATON_RETURN_IF_ERROR(add_spec(spec, n.nfc_));
  return n;
}

bool is_trivially_nfc(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<uint8_t>(text[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    Utf8Step s = utf8_step(text, i);
    if (s.kind != Utf8Step::Kind::kValid || !is_stable_code_point(s.code_point)) return false;
    i += s.num_bytes;
  }
  return true;
}

Status Normalizer::apply(std::string_view text, std::string& out) const {
  if (!nfc_ || is_trivially_nfc(text)) {
    out.assign(text);
    return Status::ok();
  }
  utf8proc_uint8_t* result = nullptr;
  const utf8proc_ssize_t len =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                   static_cast<utf8proc_ssize_t>(text.size()), &result,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  if (len < 0) {
    return invalid_argument("NFC normalization failed: {}", utf8proc_errmsg(len));
  }
  out.assign(reinterpret_cast<const char*>(result), static_cast<size_t>(len));
  std::free(result);
  return Status::ok();
}

}  // namespace baton::tokenizer
