#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include <utf8proc.h>

#include "tokenizer/utf8.h"

namespace baton::tokenizer {

namespace {

bool is_alphanumeric(char32_t cp) {
  if (cp < 0x80) return (cp >= '0' && cp <= '9') || ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z');
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
         (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

// The code point that ends just before `pos` in valid UTF-8 text.
char32_t code_point_before(std::string_view text, size_t pos) {
  size_t start = pos - 1;
  while (start > 0 && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
  return utf8_step(text, start).code_point;
}

}  // namespace

Result<AddedVocabulary> AddedVocabulary::from_json(const Json& added_tokens) {
  AddedVocabulary v;
  if (added_tokens.is_null()) return v;
  if (!added_tokens.is_array()) return invalid_argument("tokenizer.json: 'added_tokens' is not an array");
  for (const auto& t : added_tokens) {
    if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() || !t.contains("content") ||
        !t["content"].is_string()) {
      return invalid_argument("tokenizer.json: an added token lacks an integer 'id' or a string 'content'");
    }
    AddedToken a;
    a.id = t["id"].get<int32_t>();
    a.content = t["content"].get<std::string>();
    a.pattern = a.content;
    if (a.id < 0) return invalid_argument("tokenizer.json: added token '{}' has a negative id", a.content);
    if (a.content.empty()) return invalid_argument("tokenizer.json: added token {} has empty content", a.id);
    a.special = t.value("special", false);
    a.lstrip = t.value("lstrip", false);
    a.rstrip = t.value("rstrip", false);
    a.single_word = t.value("single_word", false);
    a.normalized = t.value("normalized", !a.special);
    if (a.normalized) ++v.num_normalized_;
    v.tokens_.push_back(std::move(a));
  }
  v.index();
  return v;
}

void AddedVocabulary::index() {
  for (auto& list : by_first_byte_) list.clear();
  for (uint32_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].pattern.empty()) continue;  // normalized to nothing: never matches
    by_first_byte_[static_cast<uint8_t>(tokens_[i].pattern[0])].push_back(i);
  }
  for (auto& list : by_first_byte_) {
    std::stable_sort(list.begin(), list.end(),
                     [&](uint32_t a, uint32_t b) { return tokens_[a].pattern.size() > tokens_[b].pattern.size(); });
  }
}

bool AddedVocabulary::match_at(std::string_view text, size_t pos, bool normalized, size_t& token_index) const {
  for (uint32_t idx : by_first_byte_[static_cast<uint8_t>(text[pos])]) {
    const AddedToken& t = tokens_[idx];
    if (t.normalized != normalized) continue;
    if (text.compare(pos, t.pattern.size(), t.pattern) != 0) continue;
    if (t.single_word) {
      const size_t end = pos + t.pattern.size();
      if (pos > 0 && is_alphanumeric(code_point_before(text, pos))) continue;
      if (end < text.size() && is_alphanumeric(utf8_step(text, end).code_point)) continue;
    }
    token_index = idx;
    return true;
  }
  return false;
}

void AddedVocabulary::split(std::string_view text, bool normalized, std::vector<Segment>& out) const {
  size_t emitted = 0;  // text before this has been emitted
  size_t pos = 0;
  while (pos < text.size()) {
    size_t idx = 0;
    if (by_first_byte_[static_cast<uint8_t>(text[pos])].empty() || !match_at(text, pos, normalized, idx)) {
      ++pos;
      continue;
    }
    const AddedToken& t = tokens_[idx];
    size_t start = pos;
    size_t end = pos + t.pattern.size();
    if (t.lstrip) {  // the token swallows the whitespace before it
      while (start > emitted) {
        size_t prev = start - 1;
        while (prev > emitted && (static_cast<uint8_t>(text[prev]) & 0xC0) == 0x80) --prev;
        if (!is_unicode_whitespace(utf8_step(text, prev).code_point)) break;
        start = prev;
      }
    }
    if (t.rstrip) {  // and the whitespace after it
      while (end < text.size()) {
        Utf8Step s = utf8_step(text, end);
        if (s.kind != Utf8Step::Kind::kValid || !is_unicode_whitespace(s.code_point)) break;
        end += s.num_bytes;
      }
    }
    if (start > emitted) out.push_back({text.substr(emitted, start - emitted), -1});
    out.push_back({{}, t.id});
    emitted = end;
    pos = end;
  }
  if (emitted < text.size()) out.push_back({text.substr(emitted), -1});
}

}  // namespace baton::tokenizer
