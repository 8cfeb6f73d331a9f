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

Result<std::string> TokenizerCodec::render_chat(const ChatRenderInput& input) const {
  if (!tokenizer_) return invalid_argument("this model has no tokenizer, so it has no chat template");
  BATON_ASSIGN_OR_RETURN(std::vector<ChatMessage> parsed, parse_chat_messages(input.messages));
  ChatTemplateOptions options;
  options.add_generation_prompt = input.add_generation_prompt;
  options.tools = input.tools;
  if (input.template_kwargs.is_object() && !input.template_kwargs.empty()) {
    options.chat_template_kwargs = OrderedJson(input.template_kwargs);
  }
  return tokenizer_->apply_chat_template(parsed, options);
}

}  // namespace baton
