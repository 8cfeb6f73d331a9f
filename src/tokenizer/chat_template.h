// A model's chat template, rendered from its Jinja source by the engine in
// tokenizer/jinja/ as transformers' apply_chat_template renders it (and vLLM
// through it): the template sees `messages`, `tools`, `add_generation_prompt`,
// the tokenizer's special tokens (bos_token, eos_token, ...) and the
// request's chat_template_kwargs (e.g. enable_thinking).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "tokenizer/jinja/template.h"

namespace baton {

// JSON that keeps object keys in the order given: what the template sees
// (a tool's `tojson` must print keys as the client sent them).
using OrderedJson = nlohmann::ordered_json;

// Like parse_json (depth limit, never throws), keeping key order.
Result<OrderedJson> parse_ordered_json(std::string_view text, std::string_view what = "JSON");

struct ChatMessage {
  std::string role;                              // system, user, assistant, tool, or any role the template knows
  std::string content;                           // text parts joined by "\n"; null content is ""
  std::optional<std::string> reasoning_content;  // assistant history (Qwen3)
  // Assistant tool calls as the client sent them, each function's
  // `arguments` JSON string parsed into an object (as vLLM passes them to
  // templates); null when none.
  OrderedJson tool_calls = nullptr;
  std::optional<std::string> tool_call_id = std::nullopt;  // role "tool"
  std::optional<std::string> name = std::nullopt;
};

struct ChatTemplateOptions {
  bool add_generation_prompt = true;
  // Shorthand for chat_template_kwargs {"enable_thinking": ...} (Qwen3).
  std::optional<bool> enable_thinking;
  // The request's `tools` (null: none; the template sees none).
  OrderedJson tools = nullptr;
  // The request's chat_template_kwargs: more template variables (null or an
  // object). They cannot replace messages, tools or add_generation_prompt.
  OrderedJson chat_template_kwargs = nullptr;
};

// The special tokens of tokenizer_config.json the template can use.
struct ChatTemplateTokens {
  std::string bos_token, eos_token, unk_token, pad_token;  // empty: not set
};

// Kept for Tokenizer::chat_template_family(): every template is now rendered
// by the Jinja engine, so there is one family.
enum class ChatTemplateFamily { kJinja };

const char* chat_template_family_name(ChatTemplateFamily family);

class ChatTemplate {
 public:
  // Parses the template text; a syntax error is kInvalidArgument naming the line.
  static Result<ChatTemplate> parse(std::string_view template_text, ChatTemplateTokens tokens);
  // The same with only bos_token known (Tokenizer's existing call).
  static Result<ChatTemplate> recognize(std::string_view template_text, std::string bos_token);

  // The template of a tokenizer or model folder: tokenizer_config.json's
  // chat_template (a string, or the entry named "default" of a list), else
  // chat_template.jinja; the special tokens come from tokenizer_config.json.
  // kNotFound when the folder has no template.
  static Result<ChatTemplate> load(const std::string& dir);

  ChatTemplateFamily family() const { return ChatTemplateFamily::kJinja; }

  // Renders the conversation. Errors are kInvalidArgument: bad options, or
  // the template's own raise_exception (carrying exactly its message), or a
  // render error or limit naming the line.
  Result<std::string> render(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options) const;

  // Bounds on one render (steps, output size, call depth).
  void set_limits(const jinja::RenderLimits& limits) { limits_ = limits; }

 private:
  ChatTemplate(jinja::Template tmpl, ChatTemplateTokens tokens)
      : template_(std::move(tmpl)), tokens_(std::move(tokens)) {}

  jinja::Template template_;
  ChatTemplateTokens tokens_;
  jinja::RenderLimits limits_;
};

// Parses OpenAI-style messages: [{"role": ..., "content": ...}, ...]. Content
// may be a string, null, or a list of {"type": "text", "text": ...} parts
// (joined by "\n", as vLLM does); non-text parts are kUnimplemented.
// Assistant `tool_calls` ({"id", "type": "function", "function": {"name",
// "arguments"}}) are kept, `arguments` parsed from its JSON string; role
// "tool" messages keep `tool_call_id`.
Result<std::vector<ChatMessage>> parse_chat_messages(const Json& messages);
Result<std::vector<ChatMessage>> parse_chat_messages(const OrderedJson& messages);

}  // namespace baton
