#include "tokenizer/chat_template.h"

#include "tokenizer/utf8.h"

namespace baton {

namespace {

// Fingerprints of the template texts shipped in tokenizer_config.json.
constexpr uint64_t kQwen3Fingerprint = 0x2bfdb7aa9754484eull;   // Qwen3 (hybrid thinking)
constexpr uint64_t kLlama3Fingerprint = 0x74891e390e614ae2ull;  // Llama-3 (8B/70B Instruct)

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Python str.lstrip(c) / rstrip(c) / strip(c) for one ASCII character.
std::string_view lstrip_char(std::string_view s, char c) {
  while (!s.empty() && s.front() == c) s.remove_prefix(1);
  return s;
}
std::string_view rstrip_char(std::string_view s, char c) {
  while (!s.empty() && s.back() == c) s.remove_suffix(1);
  return s;
}
std::string_view strip_char(std::string_view s, char c) { return rstrip_char(lstrip_char(s, c), c); }

// Python's str.isspace() (what Jinja's trim filter strips).
bool is_python_space(char32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x1C: case 0x1D: case 0x1E: case 0x1F:
    case 0x20: case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

// Jinja `| trim`: Python str.strip() on valid UTF-8.
std::string_view python_strip(std::string_view s) {
  size_t begin = 0;
  while (begin < s.size()) {
    auto step = tokenizer::utf8_step(s, begin);
    if (step.kind != tokenizer::Utf8Step::Kind::kValid || !is_python_space(step.code_point)) break;
    begin += step.num_bytes;
  }
  size_t end = s.size();
  while (end > begin) {
    size_t start = end - 1;
    while (start > begin && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
    auto step = tokenizer::utf8_step(s, start);
    if (step.kind != tokenizer::Utf8Step::Kind::kValid || !is_python_space(step.code_point)) break;
    end = start;
  }
  return s.substr(begin, end - begin);
}

// Python s.split(sep)[0] and s.split(sep)[-1].
std::string_view before_first(std::string_view s, std::string_view sep) {
  const size_t p = s.find(sep);
  return p == std::string_view::npos ? s : s.substr(0, p);
}
std::string_view after_last(std::string_view s, std::string_view sep) {
  const size_t p = s.rfind(sep);
  return p == std::string_view::npos ? s : s.substr(p + sep.size());
}

Status check_roles(const std::vector<ChatMessage>& messages) {
  if (messages.empty()) return invalid_argument("chat template: the conversation has no messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& r = messages[i].role;
    if (r != "system" && r != "user" && r != "assistant" && r != "tool") {
      return invalid_argument("chat template: message {} has an unknown role '{}' "
                              "(expected system, user, assistant or tool)", i, r);
    }
  }
  return Status::ok();
}

}  // namespace

const char* chat_template_family_name(ChatTemplateFamily family) {
  switch (family) {
    case ChatTemplateFamily::kQwen3: return "qwen3";
    case ChatTemplateFamily::kLlama3: return "llama3";
  }
  return "?";
}

uint64_t ChatTemplate::fingerprint(std::string_view text) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : text) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

Result<ChatTemplate> ChatTemplate::recognize(std::string_view template_text, std::string bos_token) {
  const uint64_t fp = fingerprint(template_text);
  if (fp == kQwen3Fingerprint) return ChatTemplate(ChatTemplateFamily::kQwen3, std::move(bos_token));
  if (fp == kLlama3Fingerprint) return ChatTemplate(ChatTemplateFamily::kLlama3, std::move(bos_token));
  std::string head(template_text.substr(0, 60));
  for (char& c : head) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return unimplemented(
      "chat template not recognized (fingerprint {:016x}, {} bytes, starting '{}'): only the Qwen3 and "
      "Llama-3 templates are known",
      fp, template_text.size(), head);
}

Result<std::string> ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                         const ChatTemplateOptions& options) const {
  BATON_RETURN_IF_ERROR(check_roles(messages));
  switch (family_) {
    case ChatTemplateFamily::kQwen3: return render_qwen3(messages, options);
    case ChatTemplateFamily::kLlama3: return render_llama3(messages);
  }
  return internal_error("unknown chat template family");
}

Result<std::string> ChatTemplate::render_qwen3(const std::vector<ChatMessage>& messages,
                                               const ChatTemplateOptions& options) const {
  std::string out;
  const size_t n = messages.size();
  if (messages[0].role == "system") out += "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n";
  // The last user turn that is not a tool result: assistant turns after it
  // keep their reasoning, earlier ones lose it.
  size_t last_query_index = n - 1;
  for (size_t k = n; k-- > 0;) {
    const auto& m = messages[k];
    if (m.role == "user" &&
        !(starts_with(m.content, "<tool_response>") && ends_with(m.content, "</tool_response>"))) {
      last_query_index = k;
      break;
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const ChatMessage& m = messages[i];
    if (m.role == "user" || (m.role == "system" && i != 0)) {
      out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    } else if (m.role == "assistant") {
      std::string_view content = m.content;
      std::string_view reasoning;
      if (m.reasoning_content.has_value()) {
        reasoning = *m.reasoning_content;
      } else if (m.content.find("</think>") != std::string::npos) {
        std::string_view full = m.content;
        content = lstrip_char(after_last(full, "</think>"), '\n');
        reasoning = lstrip_char(after_last(rstrip_char(before_first(full, "</think>"), '\n'), "<think>"), '\n');
      }
      out += "<|im_start|>assistant\n";
      if (i > last_query_index && (i == n - 1 || !reasoning.empty())) {
        out += "<think>\n";
        out += strip_char(reasoning, '\n');
        out += "\n</think>\n\n";
        out += lstrip_char(content, '\n');
      } else {
        out += content;
      }
      out += "<|im_end|>\n";
    } else if (m.role == "tool") {
      if (i == 0 || messages[i - 1].role != "tool") out += "<|im_start|>user";
      out += "\n<tool_response>\n" + m.content + "\n</tool_response>";
      if (i == n - 1 || messages[i + 1].role != "tool") out += "<|im_end|>\n";
    }
  }
  if (options.add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (options.enable_thinking.has_value() && !*options.enable_thinking) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

Result<std::string> ChatTemplate::render_llama3(const std::vector<ChatMessage>& messages) const {
  // The template always ends with the assistant header, whatever
  // add_generation_prompt says.
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0) out += bos_token_;
    out += "<|start_header_id|>" + messages[i].role + "<|end_header_id|>\n\n";
    out += python_strip(messages[i].content);
    out += "<|eot_id|>";
  }
  out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

Result<std::vector<ChatMessage>> parse_chat_messages(const Json& messages) {
  if (!messages.is_array()) return invalid_argument("'messages' must be an array");
  std::vector<ChatMessage> out;
  out.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = messages[i];
    if (!m.is_object()) return invalid_argument("messages[{}] is not an object", i);
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) return invalid_argument("messages[{}] has no string 'role'", i);
    ChatMessage msg;
    msg.role = role->get<std::string>();
    auto tool_calls = m.find("tool_calls");
    if (tool_calls != m.end() && !tool_calls->is_null() && !(tool_calls->is_array() && tool_calls->empty())) {
      return unimplemented("messages[{}]: tool calls are not supported", i);
    }
    auto content = m.find("content");
    if (content == m.end() || content->is_null()) {
      msg.content.clear();
    } else if (content->is_string()) {
      msg.content = content->get<std::string>();
    } else if (content->is_array()) {
      for (size_t k = 0; k < content->size(); ++k) {
        const Json& part = (*content)[k];
        if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
          return invalid_argument("messages[{}].content[{}] has no 'type'", i, k);
        }
        if (part["type"] != "text") {
          return unimplemented("messages[{}].content[{}]: content part type '{}' is not supported (text only)", i,
                               k, part["type"].get<std::string>());
        }
        if (!part.contains("text") || !part["text"].is_string()) {
          return invalid_argument("messages[{}].content[{}] has no string 'text'", i, k);
        }
        if (k > 0) msg.content += "\n";
        msg.content += part["text"].get<std::string>();
      }
    } else {
      return invalid_argument("messages[{}].content must be a string, null or a list of text parts", i);
    }
    auto reasoning = m.find("reasoning_content");
    if (reasoning != m.end() && !reasoning->is_null()) {
      if (!reasoning->is_string()) return invalid_argument("messages[{}].reasoning_content is not a string", i);
      msg.reasoning_content = reasoning->get<std::string>();
    }
    out.push_back(std::move(msg));
  }
  return out;
}

}  // namespace baton
