#include "server/tool_call_parser.h"

#include <algorithm>
#include <array>

namespace baton {

namespace {

constexpr std::string_view kHermesBegin = "<tool_call>";
constexpr std::string_view kHermesEnd = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kDsCallsBegin = "<｜tool▁calls▁begin｜>";
constexpr std::string_view kDsCallsEnd = "<｜tool▁calls▁end｜>";
constexpr std::string_view kDsCallBegin = "<｜tool▁call▁begin｜>";
constexpr std::string_view kDsCallEnd = "<｜tool▁call▁end｜>";
constexpr std::string_view kDsSep = "<｜tool▁sep｜>";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

bool all_space(std::string_view s) { return std::all_of(s.begin(), s.end(), is_space); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// The longest suffix of `text` that is a proper prefix of `marker`: bytes that
// may still become the marker once more text arrives.
size_t partial_marker_suffix(std::string_view text, std::string_view marker) {
  for (size_t n = std::min(text.size(), marker.size() - 1); n > 0; --n) {
    if (text.substr(text.size() - n) == marker.substr(0, n)) return n;
  }
  return 0;
}

// An OpenAI arguments string from a JSON value: objects serialised, strings
// (some models write the arguments as a JSON string) kept when they hold JSON.
std::optional<std::string> arguments_text(const Json& args) {
  if (args.is_object()) return dump_json(args);
  if (args.is_string()) {
    auto inner = parse_json(args.get<std::string>());
    if (inner.is_ok() && inner->is_object()) return dump_json(*inner);
  }
  return std::nullopt;
}

// {"name": "...", "arguments"|"parameters": {...}}
std::optional<ToolCall> call_from_object(std::string_view text) {
  auto parsed = parse_json(text, "tool call");
  if (!parsed.is_ok() || !parsed->is_object()) return std::nullopt;
  const Json& obj = *parsed;
  auto name = obj.find("name");
  if (name == obj.end() || !name->is_string() || name->get<std::string>().empty()) return std::nullopt;
  auto args = obj.find("arguments");
  if (args == obj.end()) args = obj.find("parameters");
  std::optional<std::string> arguments = args == obj.end() ? std::string("{}") : arguments_text(*args);
  if (!arguments) return std::nullopt;
  return ToolCall{name->get<std::string>(), std::move(*arguments)};
}

// function<｜tool▁sep｜>NAME\n```json\nARGS\n```
std::optional<ToolCall> call_from_deepseek(std::string_view body) {
  size_t sep = body.find(kDsSep);
  if (sep == std::string_view::npos) return std::nullopt;
  std::string_view rest = body.substr(sep + kDsSep.size());
  size_t newline = rest.find('\n');
  if (newline == std::string_view::npos) return std::nullopt;
  std::string name(trim(rest.substr(0, newline)));
  std::string_view args = trim(rest.substr(newline + 1));
  if (args.substr(0, 7) == "```json") args.remove_prefix(7);
  else if (args.substr(0, 3) == "```") args.remove_prefix(3);
  if (args.size() >= 3 && args.substr(args.size() - 3) == "```") args.remove_suffix(3);
  auto parsed = parse_json(trim(args), "tool call arguments");
  if (name.empty() || !parsed.is_ok()) return std::nullopt;
  std::optional<std::string> arguments = arguments_text(*parsed);
  if (!arguments) return std::nullopt;
  return ToolCall{std::move(name), std::move(*arguments)};
}

// End (exclusive) of the JSON object that starts at text[0] == '{', or npos
// if it has not closed yet. Linear; strings and escapes respected.
size_t object_end(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

}  // namespace

const char* tool_call_format_name(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kNone: return "none";
    case ToolCallFormat::kHermes: return "hermes";
    case ToolCallFormat::kLlama3Json: return "llama3_json";
    case ToolCallFormat::kDeepSeekV3: return "deepseek_v3";
  }
  return "?";
}

Result<ToolCallFormat> parse_tool_call_format(std::string_view name) {
  for (ToolCallFormat f :
       {ToolCallFormat::kNone, ToolCallFormat::kHermes, ToolCallFormat::kLlama3Json, ToolCallFormat::kDeepSeekV3}) {
    if (name == tool_call_format_name(f)) return f;
  }
  return invalid_argument("unknown tool call parser '{}' (known: hermes, llama3_json, deepseek_v3, none)", name);
}

ToolCallFormat detect_tool_call_format(std::string_view chat_template) {
  if (chat_template.find(kHermesBegin) != std::string_view::npos) return ToolCallFormat::kHermes;
  if (chat_template.find("tool▁calls▁begin") != std::string_view::npos) return ToolCallFormat::kDeepSeekV3;
  if (chat_template.find("<|python_tag|>") != std::string_view::npos ||
      (chat_template.find("ipython") != std::string_view::npos &&
       chat_template.find("parameters") != std::string_view::npos)) {
    return ToolCallFormat::kLlama3Json;
  }
  return ToolCallFormat::kNone;
}

std::string tool_call_opening(ToolCallFormat format, std::string_view function_name) {
  const std::string quoted = dump_json(std::string(function_name));
  switch (format) {
    case ToolCallFormat::kHermes:
      return function_name.empty() ? "<tool_call>\n{\"name\": \""
                                   : "<tool_call>\n{\"name\": " + quoted + ", \"arguments\": ";
    case ToolCallFormat::kLlama3Json:
      return function_name.empty() ? "{\"name\": \"" : "{\"name\": " + quoted + ", \"parameters\": ";
    case ToolCallFormat::kDeepSeekV3: {
      std::string open = std::string(kDsCallsBegin) + std::string(kDsCallBegin) + "function" + std::string(kDsSep);
      return function_name.empty() ? open : open + std::string(function_name) + "\n```json\n";
    }
    case ToolCallFormat::kNone: break;
  }
  return "";
}

ToolCallStreamParser::ToolCallStreamParser(ToolCallFormat format, std::string prefix)
    : format_(format), buffer_(std::move(prefix)) {}

ToolCallStreamParser::Delta ToolCallStreamParser::push(std::string_view text) {
  buffer_.append(text);
  return scan(/*at_end=*/false);
}

ToolCallStreamParser::Delta ToolCallStreamParser::finish() { return scan(/*at_end=*/true); }

ToolCallStreamParser::Delta ToolCallStreamParser::scan(bool at_end) {
  Delta out;
  std::string_view buf(buffer_);
  auto emit_rest_as_content = [&] {
    out.content.append(buf.substr(emitted_));
    emitted_ = buf.size();
  };
  if (format_ == ToolCallFormat::kNone) {
    emit_rest_as_content();
    return out;
  }

  if (format_ == ToolCallFormat::kLlama3Json) {
    if (!decided_) {
      std::string_view lead = buf;
      while (!lead.empty() && is_space(lead.front())) lead.remove_prefix(1);
      if (lead.empty() && !at_end) return out;  // only spaces so far
      if (!at_end && lead.size() < kPythonTag.size() && kPythonTag.substr(0, lead.size()) == lead) return out;
      decided_ = true;
      json_mode_ = lead.substr(0, kPythonTag.size()) == kPythonTag || (!lead.empty() && lead.front() == '{');
    }
    if (!json_mode_ || failed_) {
      emit_rest_as_content();
      return out;
    }
    while (emitted_ < buf.size()) {
      size_t pos = emitted_;
      while (pos < buf.size() && (is_space(buf[pos]) || buf[pos] == ';')) ++pos;
      if (buf.substr(pos, kPythonTag.size()) == kPythonTag) pos += kPythonTag.size();
      while (pos < buf.size() && is_space(buf[pos])) ++pos;
      if (pos == buf.size()) break;
      if (buf[pos] != '{') {
        if (!at_end && kPythonTag.substr(0, buf.size() - pos) == buf.substr(pos)) break;
        failed_ = true;
        break;
      }
      size_t end = object_end(buf.substr(pos));
      if (end == std::string_view::npos) {
        if (at_end) failed_ = true;
        break;
      }
      std::optional<ToolCall> call = call_from_object(buf.substr(pos, end));
      if (!call) {
        failed_ = true;
        break;
      }
      out.tool_calls.push_back(std::move(*call));
      ++num_calls_;
      emitted_ = pos + end;
    }
    if (failed_) emit_rest_as_content();
    else if (at_end) emitted_ = buf.size();  // trailing spaces and separators
    return out;
  }

  // Marker formats: hermes and deepseek_v3.
  const bool hermes = format_ == ToolCallFormat::kHermes;
  const std::string_view call_begin = hermes ? kHermesBegin : kDsCallBegin;
  const std::string_view call_end = hermes ? kHermesEnd : kDsCallEnd;
  const std::array<std::string_view, 2> openings = {call_begin, hermes ? kHermesBegin : kDsCallsBegin};
  while (!failed_) {
    if (!in_calls_) {
      size_t first = std::string_view::npos;
      for (std::string_view m : openings) first = std::min(first, buf.find(m, emitted_));
      if (first != std::string_view::npos) {
        out.content.append(buf.substr(emitted_, first - emitted_));
        emitted_ = first;
        in_calls_ = true;
        continue;
      }
      size_t hold = 0;
      if (!at_end) {
        for (std::string_view m : openings) hold = std::max(hold, partial_marker_suffix(buf.substr(emitted_), m));
      }
      out.content.append(buf.substr(emitted_, buf.size() - hold - emitted_));
      emitted_ = buf.size() - hold;
      return out;
    }
    size_t begin = buf.find(call_begin, emitted_);
    if (begin == std::string_view::npos) {
      if (at_end) {
        // After the calls: only spaces and the closing marker are expected.
        std::string rest(buf.substr(emitted_));
        if (!hermes) {
          size_t at = rest.find(kDsCallsEnd);
          if (at != std::string::npos) rest.erase(at, kDsCallsEnd.size());
        }
        if (!all_space(rest)) out.content.append(rest);
        emitted_ = buf.size();
      }
      return out;
    }
    size_t body = begin + call_begin.size();
    size_t end = buf.find(call_end, body);
    if (end == std::string_view::npos) {
      if (at_end) {
        failed_ = true;
        emitted_ = begin;
        break;
      }
      return out;
    }
    std::string_view text = buf.substr(body, end - body);
    std::optional<ToolCall> call = hermes ? call_from_object(trim(text)) : call_from_deepseek(text);
    if (!call) {
      failed_ = true;
      emitted_ = begin;
      break;
    }
    out.tool_calls.push_back(std::move(*call));
    ++num_calls_;
    emitted_ = end + call_end.size();
  }
  emit_rest_as_content();
  return out;
}

ParsedToolOutput parse_tool_calls(ToolCallFormat format, std::string_view text) {
  ToolCallStreamParser parser(format);
  ToolCallStreamParser::Delta a = parser.push(text);
  ToolCallStreamParser::Delta b = parser.finish();
  ParsedToolOutput out;
  if (parser.failed()) {
    out.content = std::string(text);  // as vLLM: a call that does not parse leaves the text as it is
    return out;
  }
  out.content = a.content + b.content;
  out.tool_calls = std::move(a.tool_calls);
  for (auto& c : b.tool_calls) out.tool_calls.push_back(std::move(c));
  return out;
}

}  // namespace baton
