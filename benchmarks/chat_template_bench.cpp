// Chat-template rendering: a 10-message conversation with tools (system,
// user, assistant tool calls, tool results, answers) through the real Qwen3,
// Llama-3.1 and Gemma 3 templates (tests/data/fixtures/chat_templates), and
// parsing the Qwen3 template. The target (issue 21): a 10-message render with
// tools under 50 us. The time per render is Google Benchmark's "Time" column.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "common/check.h"
#include "tokenizer/chat_template.h"

namespace baton {
namespace {

std::string template_dir(const std::string& name) {
  return std::string(BATON_TEST_DATA) + "/fixtures/chat_templates/" + name;
}

// OpenAI-style: system, user, assistant calling two tools, two tool
// results, assistant answer, user, assistant, user, and for Gemma 3 (which
// takes only alternating user/assistant turns) the same length without tools.
const char* kToolConversation = R"([
  {"role": "system", "content": "You are a helpful assistant. Answer briefly and use the tools when they help."},
  {"role": "user", "content": "What is the weather in Paris and in Rome today? I need to pack for a trip."},
  {"role": "assistant", "content": null, "tool_calls": [
    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"days\": 1}"}},
    {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\", \"days\": 1}"}}]},
  {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 21, \"sky\": \"cloudy\", \"rain_mm\": 2}"},
  {"role": "tool", "tool_call_id": "call_2", "content": "{\"temp_c\": 27, \"sky\": \"sunny\", \"rain_mm\": 0}"},
  {"role": "assistant", "content": "<think>\nBoth mild; Paris may rain.\n</think>\n\nParis: 21 C and cloudy with a little rain. Rome: 27 C and sunny."},
  {"role": "user", "content": "Should I bring an umbrella?"},
  {"role": "assistant", "content": "For Paris, yes: a small one. Rome looks dry."},
  {"role": "user", "content": "And what time is it in Tokyo now?"},
  {"role": "assistant", "content": "Let me check that for you."}
])";

const char* kTools = R"([
  {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
   "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"},
   "days": {"type": "integer", "description": "Days ahead"}}, "required": ["city"]}}},
  {"type": "function", "function": {"name": "get_time", "description": "Current local time in a time zone",
   "parameters": {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": ["timezone"]}}}
])";

std::vector<ChatMessage> conversation(bool alternating) {
  if (alternating) {
    std::vector<ChatMessage> m;
    for (int i = 0; i < 10; ++i) {
      ChatMessage msg;
      msg.role = i % 2 == 0 ? "user" : "assistant";
      msg.content = "Message number " + std::to_string(i) + " of a conversation about packing for a trip to Paris.";
      m.push_back(std::move(msg));
    }
    return m;
  }
  auto parsed = parse_chat_messages(*parse_ordered_json(kToolConversation));
  BATON_CHECK(parsed.is_ok(), "{}", parsed.status().to_string());
  return *parsed;
}

void render_bench(benchmark::State& state, const std::string& name, bool with_tools) {
  auto tmpl = ChatTemplate::load(template_dir(name));
  BATON_CHECK(tmpl.is_ok(), "{}", tmpl.status().to_string());
  const std::vector<ChatMessage> messages = conversation(/*alternating=*/name == "gemma3");
  ChatTemplateOptions options;
  if (with_tools) options.tools = *parse_ordered_json(kTools);
  size_t num_bytes = 0;
  for (auto _ : state) {
    auto out = tmpl->render(messages, options);
    BATON_CHECK(out.is_ok(), "{}", out.status().to_string());
    num_bytes = out->size();
    benchmark::DoNotOptimize(out);
  }
  state.counters["messages"] = static_cast<double>(messages.size());
  state.counters["prompt_bytes"] = static_cast<double>(num_bytes);
}

void BM_Render10MessagesWithTools_Qwen3(benchmark::State& state) { render_bench(state, "qwen3", true); }
void BM_Render10MessagesWithTools_Llama3_1(benchmark::State& state) { render_bench(state, "llama3_1", true); }
void BM_Render10Messages_Gemma3(benchmark::State& state) { render_bench(state, "gemma3", false); }

void BM_ParseTemplate_Qwen3(benchmark::State& state) {
  auto cfg = read_json_file(template_dir("qwen3") + "/tokenizer_config.json");
  BATON_CHECK(cfg.is_ok(), "{}", cfg.status().to_string());
  const std::string text = (*cfg)["chat_template"].get<std::string>();
  for (auto _ : state) {
    auto t = ChatTemplate::parse(text, {});
    BATON_CHECK(t.is_ok(), "{}", t.status().to_string());
    benchmark::DoNotOptimize(t);
  }
}

BENCHMARK(BM_Render10MessagesWithTools_Qwen3)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Render10MessagesWithTools_Llama3_1)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Render10Messages_Gemma3)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ParseTemplate_Qwen3)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace baton

BENCHMARK_MAIN();
