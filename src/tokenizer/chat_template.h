// Chat templates of the model families the project knows, rendered by C++
// code that reproduces each template's Jinja text (no general Jinja
// interpreter). The family is identified by a hash of the exact template text
// from tokenizer_config.json; any other template is kUnimplemented, never a
// guess. Tool definitions and tool calls are not supported (clear error);
// tool results (role "tool") are.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace baton {

struct ChatMessage {
  std::string role;     // system, user, assistant or tool
  std::string content;
  std::optional<std::string> reasoning_content;  // assistant history (Qwen3)
};

struct ChatTemplateOptions {
  bool add_generation_prompt = true;
  std::optional<bool> enable_thinking;  // Qwen3: false adds an empty think block
};

enum class ChatTemplateFamily { kQwen3, kLlama3 };

const char* chat_template_family_name(ChatTemplateFamily family);

class ChatTemplate {
 public:
  // Identifies the template text. `bos_token` is what the template's
  // bos_token variable holds (Llama-3 starts with it).
  static Result<ChatTemplate> recognize(std::string_view template_text, std::string bos_token);

  ChatTemplateFamily family() const { return family_; }

  // Renders the conversation as the template would.
  Result<std::string> render(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options) const;

  // 64-bit FNV-1a of the template text: how templates are identified.
  static uint64_t fingerprint(std::string_view template_text);

 private:
  ChatTemplate(ChatTemplateFamily family, std::string bos_token)
      : family_(family), bos_token_(std::move(bos_token)) {}

  Result<std::string> render_qwen3(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options) const;
  Result<std::string> render_llama3(const std::vector<ChatMessage>& messages) const;

  ChatTemplateFamily family_;
  std::string bos_token_;
};

// Parses OpenAI-style messages: [{"role": ..., "content": ...}, ...]. Content
// may be a string, null, or a list of {"type": "text", "text": ...} parts
// (joined by "\n", as vLLM does). Tool calls and non-text parts are errors.
Result<std::vector<ChatMessage>> parse_chat_messages(const Json& messages);

}  // namespace baton
