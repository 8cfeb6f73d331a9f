#include "engine/tokenizer_detokenizer.h"

#include "tokenizer/incremental_detokenizer.h"

namespace baton {

namespace {

class Stream final : public DetokenizerStream {
 public:
  Stream(std::shared_ptr<const Tokenizer> tok, bool skip_special)
      : tokenizer_(std::move(tok)), skip_special_(skip_special), detok_(*tokenizer_, skip_special) {}
  std::string add(int32_t token_id) override {
    Result<std::string> r = detok_.step(token_id);
    return r.is_ok() ? std::move(r).value() : std::string();  // sampled ids are never negative
  }
  std::string flush() override { return detok_.finish(); }
  void prime(std::span<const int32_t> prompt_ids) {
    if (!detok_.prime(prompt_ids).is_ok()) {  // a bad prompt id: decode without context
      detok_ = IncrementalDetokenizer(*tokenizer_, skip_special_);
    }
  }

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;  // outlives detok_
  bool skip_special_;
  IncrementalDetokenizer detok_;
};

}  // namespace

std::unique_ptr<DetokenizerStream> TokenizerDetokenizer::open_stream(std::span<const int32_t> prompt_ids,
                                                                     bool skip_special_tokens) const {
  // The prompt's end is context for decoders whose output depends on
  // neighbouring tokens (SentencePiece's leading-space rule); byte-level BPE
  // ignores it.
  auto stream = std::make_unique<Stream>(tokenizer_, skip_special_tokens);
  stream->prime(prompt_ids);
  return stream;
}

}  // namespace baton
