#include "tokenizer/chat_template.h"

#include <filesystem>

namespace baton {

namespace {

namespace fs = std::filesystem;

// tokenizer_config.json names a special token as a string or as an
// AddedToken object {"content": ...}; null or absent: not set.
std::string config_token(const Json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto content = it->find("content");
    if (content != it->end() && content->is_string()) return content->get<std::string>();
  }
  return {};
}

template <typename J>
Result<std::string> message_text(const J& content, size_t i) {
  if (content.is_null()) return std::string();
  if (content.is_string()) return content.template get<std::string>();
  if (!content.is_array()) {
    return invalid_argument("messages[{}].content must be a string, null or a list of text parts", i);
  }
  std::string text;
  for (size_t k = 0; k < content.size(); ++k) {
    const J& part = content[k];
    if (!part.is_object()) return invalid_argument("messages[{}].content[{}] is not an object", i, k);
    auto type = part.find("type");
    if (type == part.end() || !type->is_string()) {
      return invalid_argument("messages[{}].content[{}] has no string 'type'", i, k);
    }
    if (type->template get<std::string>() != "text") {
      return unimplemented("messages[{}].content[{}]: content part type '{}' is not supported (text only)", i, k,
                           type->template get<std::string>());
    }
    auto t = part.find("text");
    if (t == part.end() || !t->is_string())
      return invalid_argument("messages[{}].content[{}] has no string 'text'", i, k);
    if (k > 0) text += "\n";
    text += t->template get<std::string>();
  }
  return text;
}

template <typename J>
Result<std::optional<std::string>> optional_string(const J& m, const char* key, size_t i) {
  auto it = m.find(key);
  if (it == m.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return invalid_argument("messages[{}].{} must be a string", i, key);
  return std::optional<std::string>(it->template get<std::string>());
}

// tool_calls as the template sees them: each function's `arguments` string
// parsed into an object, as vLLM does before rendering.
template <typename J>
Result<OrderedJson> parse_tool_calls(const J& calls, size_t i) {
  if (calls.is_null()) return OrderedJson();
  if (!calls.is_array()) return invalid_argument("messages[{}].tool_calls must be a list", i);
  OrderedJson out = OrderedJson::array();
  for (size_t k = 0; k < calls.size(); ++k) {
    const J& call = calls[k];
    if (!call.is_object()) return invalid_argument("messages[{}].tool_calls[{}] is not an object", i, k);
    auto fn = call.find("function");
    if (fn == call.end() || !fn->is_object()) {
      return invalid_argument("messages[{}].tool_calls[{}] has no 'function' object", i, k);
    }
    auto name = fn->find("name");
    if (name == fn->end() || !name->is_string()) {
      return invalid_argument("messages[{}].tool_calls[{}].function has no string 'name'", i, k);
    }
    OrderedJson converted(call);
    auto args = fn->find("arguments");
    if (args != fn->end() && args->is_string()) {
      auto parsed = parse_ordered_json(args->template get<std::string>(), "tool call arguments");
      if (!parsed.is_ok()) {
        return invalid_argument("messages[{}].tool_calls[{}].function.arguments is not valid JSON: {}", i, k,
                                parsed.status().message());
      }
      converted["function"]["arguments"] = std::move(*parsed);
    }
    out.push_back(std::move(converted));
  }
  return out;
}

template <typename J>
Result<std::vector<ChatMessage>> parse_messages(const J& messages) {
  if (!messages.is_array()) return invalid_argument("'messages' must be an array");
  std::vector<ChatMessage> out;
  out.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const J& m = messages[i];
    if (!m.is_object()) return invalid_argument("messages[{}] is not an object", i);
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) return invalid_argument("messages[{}] has no string 'role'", i);
    ChatMessage msg;
    msg.role = role->template get<std::string>();
    auto content = m.find("content");
    if (content != m.end()) {
      BATON_ASSIGN_OR_RETURN(msg.content, message_text(*content, i));
    }
    BATON_ASSIGN_OR_RETURN(msg.reasoning_content, optional_string(m, "reasoning_content", i));
    BATON_ASSIGN_OR_RETURN(msg.name, optional_string(m, "name", i));
    BATON_ASSIGN_OR_RETURN(msg.tool_call_id, optional_string(m, "tool_call_id", i));
    auto calls = m.find("tool_calls");
    if (calls != m.end()) {
      BATON_ASSIGN_OR_RETURN(msg.tool_calls, parse_tool_calls(*calls, i));
      if (msg.tool_calls.is_array() && msg.tool_calls.empty()) msg.tool_calls = nullptr;
    }
    out.push_back(std::move(msg));
  }
  return out;
}

jinja::Value message_value(const ChatMessage& m) {
  auto d = std::make_shared<jinja::Dict>();
  d->items.reserve(6);
  d->items.emplace_back("role", jinja::Value::string(m.role));
  d->items.emplace_back("content", jinja::Value::string(m.content));
  if (m.reasoning_content) d->items.emplace_back("reasoning_content", jinja::Value::string(*m.reasoning_content));
  if (!m.tool_calls.is_null()) d->items.emplace_back("tool_calls", jinja::from_json(m.tool_calls));
  if (m.tool_call_id) d->items.emplace_back("tool_call_id", jinja::Value::string(*m.tool_call_id));
  if (m.name) d->items.emplace_back("name", jinja::Value::string(*m.name));
  return jinja::Value::dict(std::move(d));
}

}  // namespace

Result<OrderedJson> parse_ordered_json(std::string_view text, std::string_view what) {
  BATON_RETURN_IF_ERROR(check_json_depth(text, what, kMaxJsonDepth));
  OrderedJson j = OrderedJson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded()) return j;
  try {  // again with exceptions, for the reason and position
    auto reparsed = OrderedJson::parse(text);
    (void)reparsed;
  } catch (const std::exception& e) {
    return invalid_argument("malformed {}: {}", what, e.what());
  }
  return invalid_argument("malformed {}", what);
}

const char* chat_template_family_name(ChatTemplateFamily family) {
  switch (family) {
    case ChatTemplateFamily::kJinja: return "jinja";
  }
  return "?";
}

Result<ChatTemplate> ChatTemplate::parse(std::string_view template_text, ChatTemplateTokens tokens) {
  BATON_ASSIGN_OR_RETURN(jinja::Template tmpl, jinja::Template::parse(template_text));
  return ChatTemplate(std::move(tmpl), std::move(tokens));
}

Result<ChatTemplate> ChatTemplate::recognize(std::string_view template_text, std::string bos_token) {
  ChatTemplateTokens tokens;
  tokens.bos_token = std::move(bos_token);
  return parse(template_text, std::move(tokens));
}

Result<ChatTemplate> ChatTemplate::load(const std::string& dir) {
  std::error_code ec;
  const fs::path config_path = fs::path(dir) / "tokenizer_config.json";
  Json config = Json::object();
  if (fs::is_regular_file(config_path, ec)) {
    BATON_ASSIGN_OR_RETURN(std::string text, read_file(config_path.string()));
    BATON_ASSIGN_OR_RETURN(config, parse_json(text, "tokenizer_config.json"));
    if (!config.is_object()) return invalid_argument("tokenizer_config.json is not a JSON object");
  }
  ChatTemplateTokens tokens{config_token(config, "bos_token"), config_token(config, "eos_token"),
                            config_token(config, "unk_token"), config_token(config, "pad_token")};
  auto ct = config.find("chat_template");
  if (ct != config.end() && ct->is_string()) return parse(ct->get<std::string>(), std::move(tokens));
  if (ct != config.end() && ct->is_array()) {  // [{"name": "default", "template": "..."}, ...]
    for (const auto& entry : *ct) {
      if (!entry.is_object()) continue;
      auto name = entry.find("name");
      auto text = entry.find("template");
      if (name != entry.end() && *name == "default" && text != entry.end() && text->is_string()) {
        return parse(text->get<std::string>(), std::move(tokens));
      }
    }
    return not_found("tokenizer_config.json in '{}' has no chat_template named 'default'", dir);
  }
  if (ct != config.end() && !ct->is_null()) {
    return invalid_argument("tokenizer_config.json: chat_template is neither a string nor a list");
  }
  const fs::path jinja_path = fs::path(dir) / "chat_template.jinja";
  if (fs::is_regular_file(jinja_path, ec)) {
    BATON_ASSIGN_OR_RETURN(std::string text, read_file(jinja_path.string()));
    return parse(text, std::move(tokens));
  }
  return not_found("'{}' has no chat template (neither in tokenizer_config.json nor chat_template.jinja)", dir);
}

Result<std::string> ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                         const ChatTemplateOptions& options) const {
  if (messages.empty()) return invalid_argument("chat template: the conversation has no messages");
  if (!options.tools.is_null() && !options.tools.is_array()) return invalid_argument("'tools' must be a list");
  if (!options.chat_template_kwargs.is_null() && !options.chat_template_kwargs.is_object()) {
    return invalid_argument("'chat_template_kwargs' must be an object");
  }
  jinja::List message_values;
  message_values.reserve(messages.size());
  for (const ChatMessage& m : messages) message_values.push_back(message_value(m));

  std::vector<std::pair<std::string_view, jinja::Value>> globals;
  globals.reserve(8 + options.chat_template_kwargs.size());
  globals.emplace_back("messages", jinja::Value::list(std::move(message_values)));
  globals.emplace_back("tools", options.tools.is_null() ? jinja::Value::none() : jinja::from_json(options.tools));
  globals.emplace_back("documents", jinja::Value::none());
  globals.emplace_back("add_generation_prompt", jinja::Value::boolean(options.add_generation_prompt));
  const std::pair<std::string_view, const std::string*> special[] = {{"bos_token", &tokens_.bos_token},
                                                                     {"eos_token", &tokens_.eos_token},
                                                                     {"unk_token", &tokens_.unk_token},
                                                                     {"pad_token", &tokens_.pad_token}};
  for (const auto& [name, token] : special) {
    if (!token->empty()) globals.emplace_back(name, jinja::Value::string(*token));
  }
  if (options.enable_thinking) globals.emplace_back("enable_thinking", jinja::Value::boolean(*options.enable_thinking));
  if (options.chat_template_kwargs.is_object()) {
    for (auto it = options.chat_template_kwargs.begin(); it != options.chat_template_kwargs.end(); ++it) {
      const std::string& key = it.key();
      if (key == "messages" || key == "tools" || key == "add_generation_prompt" || key == "documents") {
        return invalid_argument("chat_template_kwargs cannot set '{}'", key);
      }
      globals.emplace_back(key, jinja::from_json(it.value()));  // a later name shadows an earlier one
    }
  }
  // Later entries win: kwargs override the enable_thinking shorthand and the tokens.
  std::vector<std::pair<std::string_view, jinja::Value>> unique;
  unique.reserve(globals.size());
  for (auto it = globals.rbegin(); it != globals.rend(); ++it) {
    bool seen = false;
    for (const auto& u : unique) seen = seen || u.first == it->first;
    if (!seen) unique.push_back(std::move(*it));
  }
  return template_.render(unique, limits_);
}

Result<std::vector<ChatMessage>> parse_chat_messages(const Json& messages) { return parse_messages(messages); }

Result<std::vector<ChatMessage>> parse_chat_messages(const OrderedJson& messages) { return parse_messages(messages); }

}  // namespace baton
