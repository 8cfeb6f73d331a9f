#include "tokenizer/normalizer.h"

#include <cstdlib>

#include <utf8proc.h>

#include "tokenizer/regex.h"
#include "tokenizer/utf8.h"

namespace baton::tokenizer {

namespace {

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

Status unicode_normalize(std::string_view text, int options, std::string& out) {
  utf8proc_uint8_t* result = nullptr;
  const utf8proc_ssize_t len = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                            static_cast<utf8proc_ssize_t>(text.size()), &result,
                                            static_cast<utf8proc_option_t>(UTF8PROC_STABLE | options));
  if (len < 0) return invalid_argument("Unicode normalization failed: {}", utf8proc_errmsg(len));
  out.assign(reinterpret_cast<const char*>(result), static_cast<size_t>(len));
  std::free(result);
  return Status::ok();
}

// Rust's char::to_lowercase: the simple mapping, except U+0130 (the only
// unconditional multi-character lowercase mapping).
void lowercase(std::string_view text, std::string& out) {
  out.clear();
  for (size_t i = 0; i < text.size();) {
    const Utf8Step s = utf8_step(text, i);
    i += s.num_bytes;
    if (s.code_point == 0x130) {
      out += "i\xCC\x87";
    } else {
      append_utf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(s.code_point))));
    }
  }
}

}  // namespace

struct Normalizer::Step {
  enum class Kind { kUnicode, kLowercase, kPrepend, kReplace, kStrip };
  Kind kind = Kind::kUnicode;
  int utf8proc_options = 0;                      // kUnicode
  bool nfc = false;                              // kUnicode: plain NFC, which has a fast check
  std::string content;                           // kPrepend: the prefix; kReplace: the replacement
  std::unique_ptr<Regex> pattern;                // kReplace
  bool strip_left = false, strip_right = false;  // kStrip

  Status apply(std::string_view in, std::string& out) const {
    switch (kind) {
      case Kind::kUnicode:
        if (nfc && is_trivially_nfc(in)) break;
        return unicode_normalize(in, utf8proc_options, out);
      case Kind::kLowercase: lowercase(in, out); return Status::ok();
      case Kind::kPrepend:
        if (in.empty()) break;
        out.assign(content).append(in);
        return Status::ok();
      case Kind::kReplace: {
        std::vector<std::pair<size_t, size_t>> matches;
        BATON_RETURN_IF_ERROR(pattern->find_all(in, matches));
        out.clear();
        size_t prev = 0;
        for (auto [start, end] : matches) {
          out.append(in.substr(prev, start - prev)).append(content);
          prev = end;
        }
        out.append(in.substr(prev));
        return Status::ok();
      }
      case Kind::kStrip: {
        size_t start = 0, end = in.size();
        while (strip_left && start < end) {
          const Utf8Step s = utf8_step(in, start);
          if (!is_unicode_whitespace(s.code_point)) break;
          start += s.num_bytes;
        }
        while (strip_right && end > start) {
          size_t prev = end - 1;
          while (prev > start && (static_cast<uint8_t>(in[prev]) & 0xC0) == 0x80) --prev;
          if (!is_unicode_whitespace(utf8_step(in, prev).code_point)) break;
          end = prev;
        }
        out.assign(in.substr(start, end - start));
        return Status::ok();
      }
    }
    out.assign(in);
    return Status::ok();
  }
};

namespace {

using Step = Normalizer::Step;

Result<std::unique_ptr<Step>> replace_step(const Json& spec) {
  auto step = std::make_unique<Step>();
  step->kind = Step::Kind::kReplace;
  auto pat = spec.find("pattern");
  auto content = spec.find("content");
  if (pat == spec.end() || !pat->is_object() || content == spec.end() || !content->is_string()) {
    return invalid_argument("tokenizer.json: Replace needs a 'pattern' object and a string 'content'");
  }
  const bool is_regex = pat->contains("Regex") && (*pat)["Regex"].is_string();
  if (!is_regex && !(pat->contains("String") && (*pat)["String"].is_string())) {
    return invalid_argument("tokenizer.json: Replace pattern is neither Regex nor String");
  }
  step->content = content->get<std::string>();
  BATON_ASSIGN_OR_RETURN(
      step->pattern, Regex::compile((*pat)[is_regex ? "Regex" : "String"].get_ref<const std::string&>(), !is_regex));
  return step;
}

Status add_spec(const Json& spec, std::vector<std::unique_ptr<Step>>& steps, int depth) {
  if (spec.is_null()) return Status::ok();
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) {
    return invalid_argument("tokenizer.json: normalizer has no 'type'");
  }
  if (depth > 8) return invalid_argument("tokenizer.json: normalizer Sequences nest too deeply");
  const auto& type = spec["type"].get_ref<const std::string&>();
  if (type == "Sequence") {
    auto it = spec.find("normalizers");
    if (it == spec.end() || !it->is_array()) {
      return invalid_argument("tokenizer.json: Sequence normalizer has no 'normalizers' array");
    }
    for (const auto& sub : *it) BATON_RETURN_IF_ERROR(add_spec(sub, steps, depth + 1));
    return Status::ok();
  }
  auto step = std::make_unique<Step>();
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    const bool compose = type == "NFC" || type == "NFKC";
    const bool compat = type == "NFKC" || type == "NFKD";
    step->utf8proc_options = (compose ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE) | (compat ? UTF8PROC_COMPAT : 0);
    step->nfc = type == "NFC";
  } else if (type == "Lowercase") {
    step->kind = Step::Kind::kLowercase;
  } else if (type == "Prepend") {
    auto it = spec.find("prepend");
    if (it == spec.end() || !it->is_string())
      return invalid_argument("tokenizer.json: Prepend has no string 'prepend'");
    step->kind = Step::Kind::kPrepend;
    step->content = it->get<std::string>();
  } else if (type == "Replace") {
    BATON_ASSIGN_OR_RETURN(step, replace_step(spec));
  } else if (type == "Strip") {
    step->kind = Step::Kind::kStrip;
    step->strip_left = spec.value("strip_left", false);
    step->strip_right = spec.value("strip_right", false);
  } else {
    return unimplemented("tokenizer.json: normalizer type '{}' is not supported", type);
  }
  steps.push_back(std::move(step));
  return Status::ok();
}

}  // namespace

Normalizer::Normalizer() = default;
Normalizer::Normalizer(Normalizer&&) noexcept = default;
Normalizer& Normalizer::operator=(Normalizer&&) noexcept = default;
Normalizer::~Normalizer() = default;

Result<Normalizer> Normalizer::from_json(const Json& spec) {
  Normalizer n;
  BATON_RETURN_IF_ERROR(add_spec(spec, n.steps_, 0));
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
  if (steps_.size() == 1) return steps_[0]->apply(text, out);
  out.assign(text);
  std::string next;
  for (const auto& step : steps_) {
    BATON_RETURN_IF_ERROR(step->apply(out, next));
    out.swap(next);
  }
  return Status::ok();
}

}  // namespace baton::tokenizer
