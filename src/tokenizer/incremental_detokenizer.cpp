#include "tokenizer/incremental_detokenizer.h"

#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace baton {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_tokens_(skip_special_tokens) {}

Result<std::string> IncrementalDetokenizer::step(int32_t id) {
  if (id < 0) return invalid_argument("cannot decode negative token id {}", id);
  if (skip_special_tokens_ && tokenizer_->is_special(id)) return std::string();
  pending_.append(tokenizer_->token_bytes(id));
  const size_t complete = tokenizer::utf8_complete_prefix(pending_);
  std::string delta;
  tokenizer::append_utf8_lossy(delta, std::string_view(pending_).substr(0, complete));
  pending_.erase(0, complete);
  text_ += delta;
  return delta;
}

std::string IncrementalDetokenizer::finish() {
  std::string delta;
  tokenizer::append_utf8_lossy(delta, pending_);
  pending_.clear();
  text_ += delta;
  return delta;
}

}  // namespace baton
