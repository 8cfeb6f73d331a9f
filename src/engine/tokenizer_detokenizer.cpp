#include "engine/tokenizer_detokenizer.h"

#include "tokenizer/incremental_detokenizer.h"

namespace baton {

namespace {

class Stream final : public DetokenizerStream {
 public:
  Stream(std::shared_ptr<const Tokenizer> tok, bool skip_special)
      : tokenizer_(std::move(tok)), detok_(*tokenizer_, skip_special) {}
  std::string add(int32_t token_id) override {
    Result<std::string> r = detok_.step(token_id);
    return r.is_ok() ? std::move(r).value() : std::string();  // sampled ids are never negative
  }
  std::string flush() override { return detok_.finish(); }

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;  // outlives detok_
  IncrementalDetokenizer detok_;
};

}  // namespace

std::unique_ptr<DetokenizerStream> TokenizerDetokenizer::open_stream(
    std::span<const int32_t> /*prompt_ids*/) const {
  // Byte-level BPE decodes each token independently of the prompt.
  return std::make_unique<Stream>(tokenizer_, skip_special_tokens_);
}

}  // namespace baton
