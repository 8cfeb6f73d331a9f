// libFuzzer target: the chat-template engine (src/tokenizer/jinja) on hostile
// templates and conversations. The input is a template, optionally followed
// by a line "\n---\n" and a chat request {"messages", "tools",
// "chat_template_kwargs"} as JSON (a fixed conversation when absent or
// invalid). Parsing and rendering must end in a value or an error Status:
// never a crash, a hang or unbounded memory (limits below are tighter than
// the defaults so that each input runs fast).
// fuzz-link: baton_tokenizer
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tokenizer/chat_template.h"

namespace {

const baton::OrderedJson& default_request() {
  static const baton::OrderedJson request = baton::OrderedJson::parse(R"({
    "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"},
                 {"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function",
                  "function": {"name": "f", "arguments": "{\"x\": 1}"}}]},
                 {"role": "tool", "tool_call_id": "c", "content": "r"}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "chat_template_kwargs": {"enable_thinking": false}})");
  return request;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find("\n---\n");
  const std::string_view template_text = input.substr(0, split);

  baton::OrderedJson request = default_request();
  if (split != std::string_view::npos) {
    auto parsed = baton::parse_ordered_json(input.substr(split + 5), "request");
    if (parsed.is_ok() && parsed->is_object() && parsed->contains("messages")) request = std::move(*parsed);
  }
  auto tmpl = baton::ChatTemplate::parse(template_text,
                                         {.bos_token = "<s>", .eos_token = "</s>", .unk_token = "", .pad_token = ""});
  if (!tmpl.is_ok()) return 0;
  baton::jinja::RenderLimits limits;
  limits.max_steps = 20'000;
  limits.max_output_bytes = 1 << 20;
  limits.max_bytes_built = 8 << 20;
  limits.max_list_items = 10'000;
  tmpl->set_limits(limits);
  auto messages = baton::parse_chat_messages(request["messages"]);
  if (!messages.is_ok() || messages->empty()) return 0;
  baton::ChatTemplateOptions options;
  if (request.contains("tools")) options.tools = request["tools"];
  if (request.contains("chat_template_kwargs")) options.chat_template_kwargs = request["chat_template_kwargs"];
  auto rendered = tmpl->render(*messages, options);
  (void)rendered;
  return 0;
}
