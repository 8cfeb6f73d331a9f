#include "server/tool_call_parser.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace baton {
namespace {

// Streams `text` in pieces of `step` bytes (cutting markers and UTF-8
// sequences anywhere) and returns everything the parser gave back.
ParsedToolOutput stream(ToolCallFormat format, const std::string& text, size_t step, std::string prefix = {}) {
  ToolCallStreamParser parser(format, std::move(prefix));
  ParsedToolOutput out;
  auto take = [&](ToolCallStreamParser::Delta d) {
    out.content += d.content;
    for (auto& c : d.tool_calls) out.tool_calls.push_back(std::move(c));
  };
  for (size_t i = 0; i < text.size(); i += step) take(parser.push(text.substr(i, step)));
  take(parser.finish());
  return out;
}

void expect_same_for_every_split(ToolCallFormat format, const std::string& text) {
  ParsedToolOutput whole = parse_tool_calls(format, text);
  for (size_t step : {1, 2, 3, 7, 64}) {
    ParsedToolOutput s = stream(format, text, step);
    EXPECT_EQ(s.content, whole.content) << "step " << step;
    ASSERT_EQ(s.tool_calls.size(), whole.tool_calls.size()) << "step " << step;
    for (size_t i = 0; i < s.tool_calls.size(); ++i) {
      EXPECT_EQ(s.tool_calls[i].name, whole.tool_calls[i].name);
      EXPECT_EQ(s.tool_calls[i].arguments, whole.tool_calls[i].arguments);
    }
  }
}

TEST(ToolCallParser, HermesContentThenTwoCalls) {
  const std::string text =
      "Let me check.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n"
      "</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
  ParsedToolOutput out = parse_tool_calls(ToolCallFormat::kHermes, text);
  EXPECT_EQ(out.content, "Let me check.");
  ASSERT_EQ(out.tool_calls.size(), 2u);
  EXPECT_EQ(out.tool_calls[0].name, "get_weather");
  EXPECT_EQ(parse_json(out.tool_calls[0].arguments).value(), (Json{{"city", "Paris"}, {"unit", "c"}}));
  EXPECT_EQ(out.tool_calls[1].name, "get_time");
  EXPECT_EQ(out.tool_calls[1].arguments, "{}");
  expect_same_for_every_split(ToolCallFormat::kHermes, text);
}

TEST(ToolCallParser, HermesPlainTextAndLookalikesStayContent) {
  for (std::string text : {"no calls here", "a < b and <tool", "<tool_cal", "x <tool_callz> y", "日本語 <t"}) {
    ParsedToolOutput out = parse_tool_calls(ToolCallFormat::kHermes, text);
    EXPECT_EQ(out.content, text);
    EXPECT_TRUE(out.tool_calls.empty());
    expect_same_for_every_split(ToolCallFormat::kHermes, text);
  }
}

TEST(ToolCallParser, BrokenCallLeavesTheTextAsContent) {
  const std::string text = "ok <tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": }\n</tool_call>";
  ParsedToolOutput out = parse_tool_calls(ToolCallFormat::kHermes, text);
  EXPECT_EQ(out.content, text);
  EXPECT_TRUE(out.tool_calls.empty());
  // Unterminated at the end of output, and a call without a name.
  EXPECT_TRUE(parse_tool_calls(ToolCallFormat::kHermes, "<tool_call>{\"name\": \"f\"").tool_calls.empty());
  EXPECT_TRUE(
      parse_tool_calls(ToolCallFormat::kHermes, "<tool_call>{\"arguments\": {}}</tool_call>").tool_calls.empty());
  // Hostile nesting is refused by the JSON reader, not by a crash.
  std::string deep = "<tool_call>{\"name\": \"f\", \"arguments\": " + std::string(100000, '[') + "}</tool_call>";
  EXPECT_TRUE(parse_tool_calls(ToolCallFormat::kHermes, deep).tool_calls.empty());
}

TEST(ToolCallParser, StringArgumentsHoldingJsonAreAccepted) {
  ParsedToolOutput out = parse_tool_calls(
      ToolCallFormat::kHermes, "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 1}\"}</tool_call>");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].arguments, "{\"x\":1}");
}

TEST(ToolCallParser, Llama3Json) {
  const std::string text =
      "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}; "
      "{\"name\": \"get_time\", \"parameters\": {\"tz\": \"CET\"}}";
  ParsedToolOutput out = parse_tool_calls(ToolCallFormat::kLlama3Json, text);
  EXPECT_EQ(out.content, "");
  ASSERT_EQ(out.tool_calls.size(), 2u);
  EXPECT_EQ(out.tool_calls[0].name, "get_weather");
  EXPECT_EQ(out.tool_calls[0].arguments, "{\"city\":\"Oslo\"}");
  EXPECT_EQ(out.tool_calls[1].arguments, "{\"tz\":\"CET\"}");
  expect_same_for_every_split(ToolCallFormat::kLlama3Json, text);

  // Without the tag (skipped as a special token), and plain text.
  EXPECT_EQ(parse_tool_calls(ToolCallFormat::kLlama3Json, "  {\"name\": \"f\", \"parameters\": {}}").tool_calls.size(),
            1u);
  ParsedToolOutput plain = parse_tool_calls(ToolCallFormat::kLlama3Json, "Hello {not a call}");
  EXPECT_EQ(plain.content, "Hello {not a call}");
  EXPECT_TRUE(plain.tool_calls.empty());
  expect_same_for_every_split(ToolCallFormat::kLlama3Json, "Hello {not a call}");
  ParsedToolOutput broken = parse_tool_calls(ToolCallFormat::kLlama3Json, "{\"name\": \"f\", \"parameters\": {");
  EXPECT_TRUE(broken.tool_calls.empty());
  EXPECT_EQ(broken.content, "{\"name\": \"f\", \"parameters\": {");
}

TEST(ToolCallParser, DeepSeekV3) {
  const std::string text =
      "Checking.<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n"
      "{\"city\": \"Lima\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{}\n"
      "```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
  ParsedToolOutput out = parse_tool_calls(ToolCallFormat::kDeepSeekV3, text);
  EXPECT_EQ(out.content, "Checking.");
  ASSERT_EQ(out.tool_calls.size(), 2u);
  EXPECT_EQ(out.tool_calls[0].name, "get_weather");
  EXPECT_EQ(out.tool_calls[0].arguments, "{\"city\":\"Lima\"}");
  EXPECT_EQ(out.tool_calls[1].name, "get_time");
  expect_same_for_every_split(ToolCallFormat::kDeepSeekV3, text);
}

TEST(ToolCallParser, OpeningPrefixMakesTheGeneratedTextACall) {
  for (ToolCallFormat f : {ToolCallFormat::kHermes, ToolCallFormat::kLlama3Json, ToolCallFormat::kDeepSeekV3}) {
    std::string generated;
    if (f == ToolCallFormat::kHermes) generated = "{\"city\": \"Rome\"}}\n</tool_call>";
    if (f == ToolCallFormat::kLlama3Json) generated = "{\"city\": \"Rome\"}}";
    if (f == ToolCallFormat::kDeepSeekV3)
      generated = "{\"city\": \"Rome\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>";
    ParsedToolOutput out = stream(f, generated, 3, tool_call_opening(f, "get_weather"));
    ASSERT_EQ(out.tool_calls.size(), 1u) << tool_call_format_name(f);
    EXPECT_EQ(out.tool_calls[0].name, "get_weather");
    EXPECT_EQ(out.tool_calls[0].arguments, "{\"city\":\"Rome\"}");
    EXPECT_EQ(out.content, "");
  }
}

TEST(ToolCallParser, FormatNamesAndDetection) {
  EXPECT_EQ(parse_tool_call_format("hermes").value(), ToolCallFormat::kHermes);
  EXPECT_EQ(parse_tool_call_format("deepseek_v3").value(), ToolCallFormat::kDeepSeekV3);
  auto bad = parse_tool_call_format("mistral");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("mistral"), std::string::npos);
  EXPECT_EQ(detect_tool_call_format("{{- '<tool_call>\\n' }}"), ToolCallFormat::kHermes);
  EXPECT_EQ(detect_tool_call_format("'<｜tool▁calls▁begin｜>'"), ToolCallFormat::kDeepSeekV3);
  EXPECT_EQ(detect_tool_call_format("<|python_tag|>"), ToolCallFormat::kLlama3Json);
  EXPECT_EQ(detect_tool_call_format("{{ message.content }}"), ToolCallFormat::kNone);
}

}  // namespace
}  // namespace baton
