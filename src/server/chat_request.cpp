#include "server/chat_request.h"

#include <set>

#include <fmt/format.h>

namespace baton {
namespace {

constexpr const char* kRoles = "system, developer, user, assistant, tool";

bool is_string(const Json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string();
}

// A string, null, or a list of {"type": "text", "text": string} parts joined
// by newlines (as vLLM does); other part types are refused by name.
std::optional<ApiError> read_content(const Json& m, const std::string& where, bool required, Json* out) {
  auto c = m.find("content");
  if (c == m.end() || c->is_null()) {
    if (required) return bad_request(where + ".content is required", "messages");
    *out = nullptr;
    return std::nullopt;
  }
  if (c->is_string()) {
    *out = *c;
    return std::nullopt;
  }
  if (!c->is_array()) {
    return bad_request(
        fmt::format("{}.content must be a string or a list of text parts, got {}", where, c->type_name()), "messages");
  }
  std::string text;
  for (size_t k = 0; k < c->size(); ++k) {
    const Json& part = (*c)[k];
    std::string at = fmt::format("{}.content[{}]", where, k);
    if (!part.is_object()) return bad_request(at + " must be an object", "messages");
    auto type = part.find("type");
    if (type == part.end() || !type->is_string() || *type != "text") {
      return bad_request(fmt::format("{}.type must be the string \"text\", got {} (only text parts are supported)", at,
                                     type == part.end() ? std::string("nothing") : dump_json(*type)),
                         "messages");
    }
    if (!is_string(part, "text")) return bad_request(at + ".text must be a string", "messages");
    if (k > 0) text += "\n";
    text += part["text"].get_ref<const std::string&>();
  }
  *out = std::move(text);
  return std::nullopt;
}

// [{"id", "type": "function", "function": {"name", "arguments": JSON text}}]:
// arguments become objects, which is what chat templates expect.
std::optional<ApiError> read_tool_calls(const Json& calls, const std::string& where, Json* out) {
  if (!calls.is_array()) return bad_request(where + ".tool_calls must be a list", "messages");
  *out = Json::array();
  for (size_t k = 0; k < calls.size(); ++k) {
    const Json& call = calls[k];
    std::string at = fmt::format("{}.tool_calls[{}]", where, k);
    if (!call.is_object()) return bad_request(at + " must be an object", "messages");
    if (call.contains("type") && !(call["type"].is_string() && call["type"] == "function")) {
      return bad_request(at + ".type must be \"function\"", "messages");
    }
    auto fn = call.find("function");
    if (fn == call.end() || !fn->is_object() || !is_string(*fn, "name")) {
      return bad_request(at + ".function must be an object with a string 'name'", "messages");
    }
    // Arguments stay the JSON text the client sent (the template parses it,
    // keeping its key order); it must hold an object.
    std::string arguments = "{}";
    if (auto a = fn->find("arguments"); a != fn->end() && !a->is_null()) {
      if (a->is_object()) {
        arguments = dump_json(*a);
      } else if (a->is_string()) {
        Result<Json> parsed = parse_json(a->get_ref<const std::string&>(), at + ".function.arguments");
        if (!parsed.is_ok()) return bad_request(parsed.status().message(), "messages");
        if (!parsed->is_object()) return bad_request(at + ".function.arguments must hold a JSON object", "messages");
        arguments = a->get<std::string>();
      } else {
        return bad_request(at + ".function.arguments must be a JSON string", "messages");
      }
    }
    Json normalised = {{"type", "function"},
                       {"function", {{"name", (*fn)["name"]}, {"arguments", std::move(arguments)}}}};
    if (call.contains("id")) {
      if (!call["id"].is_string()) return bad_request(at + ".id must be a string", "messages");
      normalised["id"] = call["id"];
    }
    out->push_back(std::move(normalised));
  }
  return std::nullopt;
}

std::optional<ApiError> read_messages(const Json& body, Json* out) {
  static const std::set<std::string> roles = {"system", "developer", "user", "assistant", "tool"};
  auto it = body.find("messages");
  if (it == body.end() || it->is_null()) return bad_request("'messages' is required", "messages");
  if (!it->is_array() || it->empty()) return bad_request("'messages' must be a non-empty array", "messages");
  *out = Json::array();
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& m = (*it)[i];
    std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object()) return bad_request(where + " must be an object", "messages");
    if (!is_string(m, "role")) return bad_request(where + ".role must be a string", "messages");
    const std::string& role = m["role"].get_ref<const std::string&>();
    if (!roles.count(role)) {
      return bad_request(fmt::format("{}.role '{}' is not one of {}", where, role, kRoles), "messages");
    }
    Json msg = {{"role", role}};
    const bool assistant = role == "assistant";
    Json content;
    if (auto e = read_content(m, where, /*required=*/!assistant, &content)) return e;
    msg["content"] = std::move(content);
    if (auto tc = m.find("tool_calls"); tc != m.end() && !tc->is_null()) {
      if (!assistant) return bad_request(where + ": only assistant messages carry tool_calls", "messages");
      Json calls;
      if (auto e = read_tool_calls(*tc, where, &calls)) return e;
      msg["tool_calls"] = std::move(calls);
    }
    for (const char* key : {"name", "tool_call_id", "reasoning_content"}) {
      auto f = m.find(key);
      if (f == m.end() || f->is_null()) continue;
      if (!f->is_string()) return bad_request(fmt::format("{}.{} must be a string", where, key), "messages");
      msg[key] = *f;
    }
    out->push_back(std::move(msg));
  }
  return std::nullopt;
}

std::optional<ApiError> read_tools(const Json& tools, Json* out) {
  if (!tools.is_array()) return bad_request("'tools' must be a list", "tools");
  std::set<std::string> names;
  for (size_t k = 0; k < tools.size(); ++k) {
    const Json& t = tools[k];
    std::string at = fmt::format("tools[{}]", k);
    if (!t.is_object() || !is_string(t, "type") || t["type"] != "function") {
      return bad_request(at + " must be {\"type\": \"function\", \"function\": {...}}", "tools");
    }
    auto fn = t.find("function");
    if (fn == t.end() || !fn->is_object()) return bad_request(at + ".function must be an object", "tools");
    if (!is_string(*fn, "name") || (*fn)["name"].get_ref<const std::string&>().empty()) {
      return bad_request(at + ".function.name must be a non-empty string", "tools");
    }
    if (fn->contains("description") && !(*fn)["description"].is_string() && !(*fn)["description"].is_null()) {
      return bad_request(at + ".function.description must be a string", "tools");
    }
    if (fn->contains("parameters") && !(*fn)["parameters"].is_object() && !(*fn)["parameters"].is_null()) {
      return bad_request(at + ".function.parameters must be a JSON Schema object", "tools");
    }
    if (!names.insert((*fn)["name"].get<std::string>()).second) {
      return bad_request(fmt::format("{}: a second function named '{}'", at, (*fn)["name"].get<std::string>()),
                         "tools");
    }
  }
  *out = tools;
  return std::nullopt;
}

std::optional<ApiError> read_tool_choice(const Json& choice, ChatFields* out) {
  if (choice.is_string()) {
    const std::string& s = choice.get_ref<const std::string&>();
    if (s == "auto") out->tool_choice = ToolChoice::kAuto;
    else if (s == "none") out->tool_choice = ToolChoice::kNone;
    else if (s == "required") out->tool_choice = ToolChoice::kRequired;
    else return bad_request(fmt::format("'tool_choice' '{}' is not one of none, auto, required", s), "tool_choice");
  } else if (choice.is_object()) {
    auto fn = choice.find("function");
    if (!is_string(choice, "type") || choice["type"] != "function" || fn == choice.end() || !fn->is_object() ||
        !is_string(*fn, "name")) {
      return bad_request(
          "'tool_choice' must be none, auto, required or {\"type\": \"function\", \"function\": "
          "{\"name\": ...}}",
          "tool_choice");
    }
    out->tool_choice = ToolChoice::kNamed;
    out->tool_choice_name = (*fn)["name"].get<std::string>();
  } else {
    return bad_request(fmt::format("'tool_choice' must be a string or an object, got {}", choice.type_name()),
                       "tool_choice");
  }
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> parse_chat_fields(const Json& body, ChatFields* out) {
  if (auto e = read_messages(body, &out->messages)) return e;
  if (auto t = body.find("tools"); t != body.end() && !t->is_null()) {
    if (auto e = read_tools(*t, &out->tools)) return e;
  }
  if (auto c = body.find("tool_choice"); c != body.end() && !c->is_null()) {
    if (auto e = read_tool_choice(*c, out)) return e;
  }
  if ((out->tool_choice == ToolChoice::kRequired || out->tool_choice == ToolChoice::kNamed) && !out->has_tools()) {
    return bad_request("'tool_choice' required or a named function needs 'tools'", "tool_choice");
  }
  if (out->tool_choice == ToolChoice::kNamed) {
    bool found = false;
    for (const Json& t : out->tools) found = found || t["function"]["name"] == out->tool_choice_name;
    if (!found) {
      return bad_request(
          fmt::format("'tool_choice' names function '{}', which is not in 'tools'", out->tool_choice_name),
          "tool_choice");
    }
  }
  if (auto p = body.find("parallel_tool_calls"); p != body.end() && !p->is_null()) {
    if (!p->is_boolean()) return bad_request("'parallel_tool_calls' must be a boolean", "parallel_tool_calls");
    out->parallel_tool_calls = p->get<bool>();
  }
  if (auto k = body.find("chat_template_kwargs"); k != body.end() && !k->is_null()) {
    if (!k->is_object()) return bad_request("'chat_template_kwargs' must be an object", "chat_template_kwargs");
    out->chat_template_kwargs = *k;
  }
  return std::nullopt;
}

}  // namespace baton
