// What the server needs from a tokenizer: text -> ids, the text of one token
// (for logprobs) and chat-template rendering. The engine detokenizes outputs
// itself (RequestOutput::new_text). Implementations must be thread-safe for
// concurrent const calls.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace baton {

// What a chat template renders: messages as ChatFields normalises them, the
// tools (null for none), and the request's chat_template_kwargs.
struct ChatRenderInput {
  Json messages = Json::array();
  nlohmann::ordered_json tools;  // keys in the client's order
  bool add_generation_prompt = true;
  Json template_kwargs = Json::object();
};

class PromptCodec {
 public:
  virtual ~PromptCodec() = default;

  // add_special_tokens: the tokenizer's own template (e.g. a BOS) for raw
  // prompts; false for a rendered chat template, which carries its own.
  virtual Result<std::vector<int32_t>> encode(std::string_view text, bool add_special_tokens) const = 0;
  // The decoded text of one token (may be a partial UTF-8 sequence).
  virtual std::string token_text(int32_t token_id) const = 0;
  // Renders the model's chat template; a template's own error (its
  // raise_exception) comes back as kInvalidArgument with its message.
  virtual Result<std::string> render_chat(const ChatRenderInput& input) const = 0;
  virtual int vocab_size() const = 0;
};

}  // namespace baton
