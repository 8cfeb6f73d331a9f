#include "tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace baton::tokenizer {

namespace {

// GPT-2's pattern, used by ByteLevel when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

// One compiled Split pattern (behavior Isolated: every match and every gap
// between matches becomes a piece).
class SplitRegex {
 public:
  static Result<std::unique_ptr<SplitRegex>> compile(std::string_view pattern, bool literal) {
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    uint32_t options = PCRE2_UTF | PCRE2_UCP;
    if (literal) options |= PCRE2_LITERAL;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     options, &err, &err_offset, nullptr);
    if (code == nullptr) {
      return invalid_argument("tokenizer.json: split pattern does not compile at offset {}: {}",
                              err_offset, pcre2_message(err));
    }
    auto re = std::unique_ptr<SplitRegex>(new SplitRegex(code));
    re->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    return re;
  }
  ~SplitRegex() { pcre2_code_free(code_); }

  Status split(std::string_view text, std::vector<std::string_view>& out) const {
    if (text.empty()) return Status::ok();
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    if (md == nullptr) return resource_exhausted("out of memory for regex match data");
    pcre2_match_context* mctx = nullptr;
    pcre2_jit_stack* stack = nullptr;
    Status status;
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t pos = 0;   // where the next search starts
    size_t last = 0;  // end of the last emitted piece
    while (pos < text.size()) {
      int rc = jit_ ? pcre2_jit_match(code_, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, mctx)
                    : pcre2_match(code_, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, mctx);
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
        status = internal_error("split regex failed at byte {}: {}", pos, pcre2_message(rc));
        break;
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      const size_t start = ov[0];
      const size_t end = ov[1];
      if (end == start) {  // an empty match: step over one character
        pos = start + 1;
        while (pos < text.size() && (static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80) ++pos;
        continue;
      }
      if (start > last) out.push_back(text.substr(last, start - last));
      out.push_back(text.substr(start, end - start));
      last = end;
      pos = end;
    }
    if (status.is_ok() && last < text.size()) out.push_back(text.substr(last));
    if (stack != nullptr) pcre2_jit_stack_free(stack);
    if (mctx != nullptr) pcre2_match_context_free(mctx);
    pcre2_match_data_free(md);
    return status;
  }

 private:
  explicit SplitRegex(pcre2_code* code) : code_(code) {}
  pcre2_code* code_;
  bool jit_ = false;
};

PreTokenizer::PreTokenizer() = default;
PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

namespace {

Status add_spec(const Json& spec, std::vector<std::unique_ptr<SplitRegex>>& regexes, bool& byte_level) {
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string()) {
    return invalid_argument("tokenizer.json: pre_tokenizer has no 'type'");
  }
  const auto& type = spec["type"].get_ref<const std::string&>();
  if (type == "Sequence") {
    auto it = spec.find("pretokenizers");
    if (it == spec.end() || !it->is_array()) {
      return invalid_argument("tokenizer.json: Sequence pre_tokenizer has no 'pretokenizers' array");
    }
    for (const auto& sub : *it) BATON_RETURN_IF_ERROR(add_spec(sub, regexes, byte_level));
    return Status::ok();
  }
  if (type == "Split") {
    if (spec.value("invert", false)) return unimplemented("tokenizer.json: Split with invert=true is not supported");
    const std::string behavior = spec.value("behavior", std::string("?"));
    if (behavior != "Isolated") {
      return unimplemented("tokenizer.json: Split behavior '{}' is not supported (only Isolated)", behavior);
    }
    auto pat = spec.find("pattern");
    if (pat == spec.end() || !pat->is_object()) return invalid_argument("tokenizer.json: Split has no 'pattern'");
    if (pat->contains("Regex") && (*pat)["Regex"].is_string()) {
      BATON_ASSIGN_OR_RETURN(auto re, SplitRegex::compile((*pat)["Regex"].get_ref<const std::string&>(), false));
      regexes.push_back(std::move(re));
    } else if (pat->contains("String") && (*pat)["String"].is_string()) {
      BATON_ASSIGN_OR_RETURN(auto re, SplitRegex::compile((*pat)["String"].get_ref<const std::string&>(), true));
      regexes.push_back(std::move(re));
    } else {
      return invalid_argument("tokenizer.json: Split pattern is neither Regex nor String");
    }
    return Status::ok();
  }
  if (type == "ByteLevel") {
    if (spec.value("add_prefix_space", false)) {
      return unimplemented("tokenizer.json: ByteLevel pre_tokenizer with add_prefix_space=true is not supported");
    }
    if (spec.value("use_regex", true)) {
      BATON_ASSIGN_OR_RETURN(auto re, SplitRegex::compile(kGpt2Pattern, false));
      regexes.push_back(std::move(re));
    }
    byte_level = true;
    return Status::ok();
  }
  return unimplemented("tokenizer.json: pre_tokenizer type '{}' is not supported", type);
}

}  // namespace

Result<PreTokenizer> PreTokenizer::from_json(const Json& spec) {
  if (spec.is_null()) {
    return unimplemented("tokenizer.json: no pre_tokenizer (only byte-level BPE is supported)");
  }
  PreTokenizer p;
  bool byte_level = false;
  BATON_RETURN_IF_ERROR(add_spec(spec, p.regexes_, byte_level));
  if (!byte_level) {
    return unimplemented("tokenizer.json: the pre_tokenizer has no ByteLevel step (only byte-level BPE is supported)");
  }
  return p;
}

Status PreTokenizer::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (regexes_.empty()) {
    if (!text.empty()) out.push_back(text);
    return Status::ok();
  }
  const size_t base = out.size();
  BATON_RETURN_IF_ERROR(regexes_[0]->split(text, out));
  std::vector<std::string_view> pieces;
  for (size_t r = 1; r < regexes_.size(); ++r) {
    pieces.assign(out.begin() + static_cast<std::ptrdiff_t>(base), out.end());
    out.resize(base);
    for (auto piece : pieces) BATON_RETURN_IF_ERROR(regexes_[r]->split(piece, out));
  }
  return Status::ok();
}

}  // namespace baton::tokenizer
