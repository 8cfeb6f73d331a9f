// Tool calls in a model's output text: the formats models are trained to
// write (as vLLM's tool parsers read them), parsed back into OpenAI
// tool_calls, whole or incrementally while the output streams.
//
//   hermes       (Qwen2.5/Qwen3, Hermes): <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>
//   llama3_json  (Llama-3.1/3.2/3.3):     [<|python_tag|>]{"name": ..., "parameters": {...}}[; {...}]
//   deepseek_v3  (DeepSeek-V3):           <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME
//                                         ```json\n{...}\n```<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>
//
// Text before the first call is content. A call whose body does not parse
// leaves the whole output as content, as vLLM does.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace baton {

enum class ToolCallFormat { kNone, kHermes, kLlama3Json, kDeepSeekV3 };

const char* tool_call_format_name(ToolCallFormat format);
// "hermes", "llama3_json", "deepseek_v3", "none".
Result<ToolCallFormat> parse_tool_call_format(std::string_view name);
// The format a chat template's own text asks its model to write; kNone if
// the template renders no tools.
ToolCallFormat detect_tool_call_format(std::string_view chat_template);

struct ToolCall {
  std::string name;
  std::string arguments;  // a JSON object, serialised (OpenAI sends a string)
};

struct ParsedToolOutput {
  std::string content;  // text that is not a tool call
  std::vector<ToolCall> tool_calls;
};

// The whole output at once (non-streaming responses).
ParsedToolOutput parse_tool_calls(ToolCallFormat format, std::string_view text);

// The text a prompt ends with to make the model open a tool call: of any
// function (`function_name` empty; tool_choice "required") or of the named
// one. The generated text is then parsed after this prefix.
std::string tool_call_opening(ToolCallFormat format, std::string_view function_name);

// Incremental: feed the output as it streams; each push returns the content
// that can be shown now and the calls that completed. Text that may still
// turn out to be the start of a call is held back until it is decided.
class ToolCallStreamParser {
 public:
  explicit ToolCallStreamParser(ToolCallFormat format, std::string prefix = {});

  struct Delta {
    std::string content;
    std::vector<ToolCall> tool_calls;
  };
  Delta push(std::string_view text);
  // End of output: what is held back is released (as content if it never
  // became a call).
  Delta finish();

  int num_tool_calls() const { return num_calls_; }
  // A call's body did not parse: everything from it on came out as content.
  bool failed() const { return failed_; }

 private:
  Delta scan(bool at_end);

  ToolCallFormat format_;
  std::string buffer_;
  size_t emitted_ = 0;      // buffer_ bytes already returned as content or calls
  bool in_calls_ = false;   // past the first call's opening
  bool json_mode_ = false;  // llama3_json: the output began with a call
  bool decided_ = false;    // llama3_json: the first non-space byte was seen
  bool failed_ = false;     // a call did not parse: the rest is content
  int num_calls_ = 0;
};

}  // namespace baton
