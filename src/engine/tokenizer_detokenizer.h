// Detokenizer (engine/detokenizer.h) over the tokenizer layer: one
// IncrementalDetokenizer per request, special tokens skipped or not as the
// request asks.
#pragma once

#include <memory>

#include "engine/detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace baton {

class TokenizerDetokenizer final : public Detokenizer {
 public:
  explicit TokenizerDetokenizer(std::shared_ptr<const Tokenizer> tokenizer) : tokenizer_(std::move(tokenizer)) {}

  std::unique_ptr<DetokenizerStream> open_stream(std::span<const int32_t> prompt_ids,
                                                 bool skip_special_tokens) const override;
  const Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
};

}  // namespace baton
