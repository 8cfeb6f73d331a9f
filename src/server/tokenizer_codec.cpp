#include "server/tokenizer_codec.h"

namespace baton {

Result<std::vector<int32_t>> TokenizerCodec::encode(std::string_view text, bool add_special_tokens) const {
  if (!tokenizer_) return invalid_argument("this model has no tokenizer: send the prompt as token ids");
  return tokenizer_->encode(text, add_special_tokens);
}

std::string TokenizerCodec::token_text(int32_t token_id) const {
  if (!tokenizer_) return "token_id:" + std::to_string(token_id);
  return std::string(tokenizer_->token_bytes(token_id));
}

Result<std::string> TokenizerCodec::render_chat(const Json& messages, bool add_generation_prompt) const {
  if (!tokenizer_) return invalid_argument("this model has no tokenizer, so it has no chat template");
  BATON_ASSIGN_OR_RETURN(std::vector<ChatMessage> parsed, parse_chat_messages(messages));
  ChatTemplateOptions options;
  options.add_generation_prompt = add_generation_prompt;
  return tokenizer_->apply_chat_template(parsed, options);
}

}  // namespace baton
