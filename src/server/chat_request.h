// The chat-only fields of a /v1/chat/completions body: messages (with tool
// calls and tool results), tools, tool_choice and chat_template_kwargs,
// validated and normalised into what a chat template renders, as vLLM hands
// them to the template (content parts joined; tool-call arguments stay JSON
// text, which the template layer parses keeping their key order).
#pragma once

#include <optional>
#include <string>

#include "common/json.h"
#include "server/api_error.h"

namespace baton {

enum class ToolChoice { kAuto, kNone, kRequired, kNamed };

struct ChatFields {
  // [{"role", "content": string|null, "tool_calls"?: [...], "tool_call_id"?, "name"?,
  //   "reasoning_content"?}]
  Json messages = Json::array();
  Json tools;  // null, or [{"type": "function", "function": {"name", "description"?, "parameters"?}}]
  // The same tools with their keys in the order the client sent them (a
  // template's `tojson` prints them so); null: use `tools`.
  nlohmann::ordered_json tools_in_order;
  ToolChoice tool_choice = ToolChoice::kAuto;
  std::string tool_choice_name;  // kNamed: the function
  bool parallel_tool_calls = true;
  Json chat_template_kwargs = Json::object();

  bool has_tools() const { return tools.is_array() && !tools.empty(); }
};

// Reads the chat fields of `body`; the error names the offending field.
std::optional<ApiError> parse_chat_fields(const Json& body, ChatFields* out);

}  // namespace baton
