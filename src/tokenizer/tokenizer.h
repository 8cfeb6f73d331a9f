// Tokenizer: a BPE tokenizer loaded from a Hugging Face tokenizer.json (+
// tokenizer_config.json for the special tokens and the chat template), run
// as HF tokenizers runs it: added tokens found in the raw text -> normalizer
// -> pre-tokenizer -> BPE merges by rank -> post-processor; decoding through
// the file's decoder. Byte-level BPE (Qwen3, Llama-3, gpt-oss, DeepSeek-V3)
// and SentencePiece-style BPE with byte fallback (Llama-2, Gemma 3) are both
// what tokenizer.json declares; a component that is not implemented is
// refused at load with an error naming it. Immutable after loading except
// for an internal word cache, so one instance may be shared by many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "tokenizer/chat_template.h"

namespace baton {

namespace tokenizer {
class BpeModel;
class Normalizer;
class PreTokenizer;
class AddedVocabulary;
class Decoder;
}  // namespace tokenizer

class Tokenizer {
 public:
  // `path` is a directory holding tokenizer.json (and, optionally,
  // tokenizer_config.json: a model directory works) or a tokenizer.json file.
  static Result<std::unique_ptr<Tokenizer>> load(const std::string& path);

  // From the texts of tokenizer.json and tokenizer_config.json (the latter
  // may be empty: no special-token names, no chat template). Never throws:
  // any malformed input is a Status naming the problem.
  static Result<std::unique_ptr<Tokenizer>> from_json_text(std::string_view tokenizer_json,
                                                           std::string_view tokenizer_config_json);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Text -> ids. Invalid UTF-8 is kInvalidArgument naming the byte offset.
  // add_special_tokens applies the post-processor's template (e.g. a BOS);
  // special tokens written in the text are always recognised.
  Result<std::vector<int32_t>> encode(std::string_view text, bool add_special_tokens = true) const;

  // Ids -> text; invalid byte sequences become U+FFFD. Ids that name no token
  // decode to nothing (as in HF tokenizers); negative ids are an error.
  Result<std::string> decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // The raw bytes of one token as it reads in the middle of a text (may be
  // part of a UTF-8 sequence: Llama-2's <0xE2> is the byte 0xE2, its "▁the"
  // is " the"); empty for an id that names no token.
  std::string_view token_bytes(int32_t id) const;

  // True when decode(ids) is the concatenation of token_bytes read as UTF-8
  // with replacement (byte-level BPE). Otherwise the decoder has rules that
  // depend on neighbouring tokens (byte-fallback runs, stripping the first
  // token's space) and text must be decoded in context.
  bool decodes_by_concatenation() const { return concat_decode_; }

  // Token string (vocabulary spelling, e.g. "Ġhello", or an added token's
  // content) <-> id.
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int32_t id) const;

  // Id of an added/special token by its content ("<|im_end|>"); an unknown
  // name is kNotFound naming it.
  Result<int32_t> special_token_id(std::string_view name) const;
  bool is_special(int32_t id) const;

  // One past the largest token id (model vocabulary and added tokens).
  int32_t vocab_size() const { return vocab_size_; }

  // From tokenizer_config.json; nullopt when not set.
  std::optional<int32_t> bos_token_id() const { return bos_id_; }
  std::optional<int32_t> eos_token_id() const { return eos_id_; }
  std::optional<int32_t> pad_token_id() const { return pad_id_; }
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }

  // Renders a conversation with the chat template of tokenizer_config.json.
  // No template or an unknown one is an error naming the problem.
  Result<std::string> apply_chat_template(const std::vector<ChatMessage>& messages,
                                          const ChatTemplateOptions& options = {}) const;
  // The template's family, or the reason it cannot be rendered.
  Result<ChatTemplateFamily> chat_template_family() const;

 private:
  Tokenizer();
  static Result<std::unique_ptr<Tokenizer>> build(std::string_view tokenizer_json,
                                                  std::string_view tokenizer_config_json);
  Status load_config(const Json& config);
  Status build_decoding(const Json& decoder_spec);
  Status encode_text(std::string_view text, bool at_input_start, std::vector<int32_t>& ids, std::string& scratch) const;

  std::unique_ptr<tokenizer::BpeModel> model_;
  std::unique_ptr<tokenizer::Normalizer> normalizer_;
  std::unique_ptr<tokenizer::PreTokenizer> pre_tokenizer_;
  std::unique_ptr<tokenizer::AddedVocabulary> added_;
  std::unique_ptr<tokenizer::Decoder> decoder_;
  bool concat_decode_ = false;
  std::vector<std::string> added_bytes_;             // token_bytes of each added token
  std::vector<std::string> model_pieces_;            // token_bytes of model ids, unless concat_decode_
  std::unordered_map<int32_t, size_t> added_by_id_;  // id -> index in added_->tokens()
  std::vector<int32_t> prefix_ids_;                  // post-processor template, add_special_tokens only
  std::vector<int32_t> suffix_ids_;
  int32_t vocab_size_ = 0;

  std::string bos_token_, eos_token_, pad_token_;
  ChatTemplateTokens template_tokens_;  // what the chat template sees
  std::optional<int32_t> bos_id_, eos_id_, pad_id_;
  std::optional<ChatTemplate> chat_template_;
  Status chat_template_status_;  // why chat_template_ is empty
};

}  // namespace baton
