// The chat-template fixtures: every case of cases.json (transformers'
// apply_chat_template over the npm packages' templates) and the tool-call
// conversations of jinja_cases.json render exactly as jinja2 rendered them.
#include <gtest/gtest.h>

#include <string>

#include "common/json.h"
#include "tokenizer/chat_template.h"

namespace baton {
namespace {

std::string fixture_dir() { return std::string(BATON_TEST_DATA) + "/fixtures/chat_templates"; }

OrderedJson read_fixture(const std::string& name) {
  auto text = read_file(fixture_dir() + "/" + name);
  EXPECT_TRUE(text.is_ok()) << text.status().to_string();
  auto j = parse_ordered_json(text.is_ok() ? *text : "{}");
  EXPECT_TRUE(j.is_ok()) << j.status().to_string();
  return j.is_ok() ? *j : OrderedJson::object();
}

// Renders one case: {"template", "messages", "kwargs": {"add_generation_prompt", "tools", other kwargs}}.
Result<std::string> render_case(const OrderedJson& c) {
  BATON_ASSIGN_OR_RETURN(ChatTemplate tmpl, ChatTemplate::load(fixture_dir() + "/" + c["template"].get<std::string>()));
  BATON_ASSIGN_OR_RETURN(std::vector<ChatMessage> messages, parse_chat_messages(c["messages"]));
  ChatTemplateOptions options;
  options.chat_template_kwargs = OrderedJson::object();
  for (auto it = c["kwargs"].begin(); it != c["kwargs"].end(); ++it) {
    if (it.key() == "add_generation_prompt") {
      options.add_generation_prompt = it.value().get<bool>();
    } else if (it.key() == "tools") {
      options.tools = it.value();
    } else {
      options.chat_template_kwargs[it.key()] = it.value();
    }
  }
  return tmpl.render(messages, options);
}

void expect_cases(const OrderedJson& cases, size_t min_cases) {
  ASSERT_GE(cases.size(), min_cases);
  for (const auto& c : cases) {
    const std::string name = c["template"].get<std::string>() + "/" + c["case"].get<std::string>();
    auto out = render_case(c);
    if (c.contains("rendered")) {
      ASSERT_TRUE(out.is_ok()) << name << ": " << out.status().to_string();
      EXPECT_EQ(*out, c["rendered"].get<std::string>()) << name;
    } else {
      ASSERT_FALSE(out.is_ok()) << name;
      EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << name;
      EXPECT_EQ(out.status().message(), c["error"].get<std::string>()) << name;
    }
  }
}

TEST(ChatTemplateFixtureTest, AllSixteenTransformersCasesRenderExactly) {
  const OrderedJson cases = read_fixture("cases.json")["cases"];
  EXPECT_EQ(cases.size(), 16u);
  expect_cases(cases, 16);
}

TEST(ChatTemplateFixtureTest, ToolCallConversationsRenderAsJinja2) {
  // Tool calls with arguments as JSON strings (as OpenAI clients send them),
  // tool results, reasoning, enable_thinking=false, and gemma3's own
  // raise_exception for roles that do not alternate.
  expect_cases(read_fixture("jinja_cases.json")["chat_cases"], 6);
}

}  // namespace
}  // namespace baton
