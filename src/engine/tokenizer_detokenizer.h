// Detokenizer (engine/detokenizer.h) over the tokenizer layer: one
// IncrementalDetokenizer per request, special tokens skipped (vLLM's default).
#pragma once

#include <memory>

#include "engine/detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace baton {

class TokenizerDetokenizer final : public Detokenizer {
 public:
  explicit TokenizerDetokenizer(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special_tokens = true)
      : tokenizer_(std::move(tokenizer)), skip_special_tokens_(skip_special_tokens) {}

  std::unique_ptr<DetokenizerStream> open_stream(std::span<const int32_t> prompt_ids) const override;
  const Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  bool skip_special_tokens_;
};

}  // namespace baton
