// PromptCodec over the tokenizer layer (encode, token bytes, chat templates).
// A model without a tokenizer serves token-id prompts only.
#pragma once

#include <memory>

#include "server/prompt_codec.h"
#include "tokenizer/tokenizer.h"

namespace baton {

class TokenizerCodec : public PromptCodec {
 public:
  // tokenizer may be null; vocab_size is the model's.
  TokenizerCodec(std::shared_ptr<const Tokenizer> tokenizer, int vocab_size)
      : tokenizer_(std::move(tokenizer)), vocab_size_(vocab_size) {}

  Result<std::vector<int32_t>> encode(std::string_view text, bool add_special_tokens) const override;
  std::string token_text(int32_t token_id) const override;
  Result<std::string> render_chat(const ChatRenderInput& input) const override;
  int vocab_size() const override { return vocab_size_; }

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  int vocab_size_;
};

}  // namespace baton
