#include "tokenizer/incremental_detokenizer.h"

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace baton {

namespace {

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer),
      skip_special_tokens_(skip_special_tokens),
      concat_(tokenizer.decodes_by_concatenation()) {}

Status IncrementalDetokenizer::prime(std::span<const int32_t> prompt_ids) {
  // Byte-level tokens read the same anywhere, and a prompt's trailing partial
  // character is not the output's to complete.
  if (concat_) return Status::ok();
  // A few tokens are enough context; start where they decode cleanly.
  constexpr size_t kContext = 4;
  const size_t start = prompt_ids.size() > kContext ? prompt_ids.size() - kContext : 0;
  for (int32_t id : prompt_ids.subspan(start)) {
    if (id < 0) return invalid_argument("cannot decode negative token id {}", id);
    if (skip_special_tokens_ && tokenizer_->is_special(id)) continue;
    ids_.push_back(id);
  }
  BATON_ASSIGN_OR_RETURN(prefix_, tokenizer_->decode(ids_, skip_special_tokens_));
  if (prefix_.ends_with(kReplacementChar)) {  // a partial character: no context rather than a broken one
    ids_.clear();
    prefix_.clear();
  }
  prefix_index_ = ids_.size();
  return Status::ok();
}

Result<std::string> IncrementalDetokenizer::step(int32_t id) {
  if (id < 0) return invalid_argument("cannot decode negative token id {}", id);
  if (skip_special_tokens_ && tokenizer_->is_special(id)) return std::string();
  if (!concat_) return step_in_context(id);
  pending_.append(tokenizer_->token_bytes(id));
  const size_t complete = tokenizer::utf8_complete_prefix(pending_);
  std::string delta;
  tokenizer::append_utf8_lossy(delta, std::string_view(pending_).substr(0, complete));
  pending_.erase(0, complete);
  text_ += delta;
  return delta;
}

Result<std::string> IncrementalDetokenizer::step_in_context(int32_t id) {
  if (prefix_.empty() && !ids_.empty()) {
    BATON_ASSIGN_OR_RETURN(std::string new_prefix, tokenizer_->decode(ids_, skip_special_tokens_));
    if (!new_prefix.ends_with(kReplacementChar)) {
      prefix_ = std::move(new_prefix);
      prefix_index_ = ids_.size();
    }
  }
  ids_.push_back(id);
  BATON_ASSIGN_OR_RETURN(std::string all, tokenizer_->decode(ids_, skip_special_tokens_));
  if (all.size() <= prefix_.size() || all.ends_with(kReplacementChar)) return std::string();
  if (!all.starts_with(prefix_)) {
    return internal_error("incremental decode: the text of token {} does not extend '{}' (got '{}')", id, prefix_, all);
  }
  std::string delta = all.substr(prefix_.size());
  const size_t new_prefix_index = ids_.size() - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
  BATON_ASSIGN_OR_RETURN(prefix_, tokenizer_->decode(ids_, skip_special_tokens_));
  prefix_index_ = new_prefix_index;
  text_ += delta;
  return delta;
}

std::string IncrementalDetokenizer::finish() {
  std::string delta;
  if (concat_) {
    tokenizer::append_utf8_lossy(delta, pending_);
    pending_.clear();
  } else if (ids_.size() > prefix_index_) {
    Result<std::string> all = tokenizer_->decode(ids_, skip_special_tokens_);
    if (all.is_ok() && all->size() > prefix_.size() && all->starts_with(prefix_)) delta = all->substr(prefix_.size());
    ids_.clear();
    prefix_.clear();
    prefix_index_ = 0;
  }
  text_ += delta;
  return delta;
}

}  // namespace baton
