#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string>

namespace baton::tokenizer {

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

Result<std::unique_ptr<Regex>> Regex::compile(std::string_view pattern, bool literal) {
  std::unique_ptr<Regex> re(new Regex());
  if (literal) {
    re->literal_ = pattern;
    return re;
  }
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  const uint32_t options = PCRE2_UTF | PCRE2_UCP;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &err,
                                   &err_offset, nullptr);
  if (code == nullptr) {
    return invalid_argument("tokenizer.json: pattern does not compile at offset {}: {}", err_offset,
                            pcre2_message(err));
  }
  re->code_ = code;
  re->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return re;
}

Regex::~Regex() {
  if (code_ != nullptr) pcre2_code_free(static_cast<pcre2_code*>(code_));
}

Status Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>& out) const {
  if (text.empty()) return Status::ok();
  if (code_ == nullptr) {  // a literal; valid UTF-8 in both, so a byte match is a character match
    if (literal_.empty()) return Status::ok();
    for (size_t hit = text.find(literal_); hit != std::string_view::npos;
         hit = text.find(literal_, hit + literal_.size())) {
      out.emplace_back(hit, hit + literal_.size());
    }
    return Status::ok();
  }
  auto* code = static_cast<pcre2_code*>(code_);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
  if (md == nullptr) return resource_exhausted("out of memory for regex match data");
  pcre2_match_context* mctx = nullptr;
  pcre2_jit_stack* stack = nullptr;
  Status status;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;  // where the next search starts
  while (pos < text.size()) {
    int rc = jit_ ? pcre2_jit_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, mctx)
                  : pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && stack == nullptr) {
      // Deep backtracking on a long input: retry with a larger JIT stack.
      mctx = pcre2_match_context_create(nullptr);
      stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr);
      if (mctx == nullptr || stack == nullptr) {
        status = resource_exhausted("out of memory for the regex stack");
        break;
      }
      pcre2_jit_stack_assign(mctx, nullptr, stack);
      continue;
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      status = internal_error("regex match failed at byte {}: {}", pos, pcre2_message(rc));
      break;
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t start = ov[0];
    const size_t end = ov[1];
    if (end <= start) {  // an empty match: step over one character
      pos = start + 1;
      while (pos < text.size() && (static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80) ++pos;
      continue;
    }
    out.emplace_back(start, end);
    pos = end;
  }
  if (stack != nullptr) pcre2_jit_stack_free(stack);
  if (mctx != nullptr) pcre2_match_context_free(mctx);
  pcre2_match_data_free(md);
  return status;
}

}  // namespace baton::tokenizer
