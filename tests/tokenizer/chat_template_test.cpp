// Chat templates beyond the fixture cases: Qwen3's reasoning handling and
// thinking switch, Llama-3's trimming, unknown templates and bad messages.
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include "tokenizer_test_util.h"

namespace baton {
namespace {

using testing::real_tokenizer;

std::string render(const char* name, const std::vector<ChatMessage>& messages, ChatTemplateOptions options = {}) {
  auto r = real_tokenizer(name).apply_chat_template(messages, options);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : std::string();
}

TEST(ChatTemplateTest, FamiliesAreRecognized) {
  EXPECT_EQ(*real_tokenizer("qwen3").chat_template_family(), ChatTemplateFamily::kQwen3);
  EXPECT_EQ(*real_tokenizer("llama3").chat_template_family(), ChatTemplateFamily::kLlama3);
}

TEST(ChatTemplateTest, Qwen3ThinkingOnOffAndNoGenerationPrompt) {
  std::vector<ChatMessage> m = {{"user", "Hi", {}}};
  EXPECT_EQ(render("qwen3", m), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  ChatTemplateOptions on;
  on.enable_thinking = true;
  EXPECT_EQ(render("qwen3", m, on), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  ChatTemplateOptions off;
  off.enable_thinking = false;
  EXPECT_EQ(render("qwen3", m, off),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  ChatTemplateOptions no_prompt;
  no_prompt.add_generation_prompt = false;
  EXPECT_EQ(render("qwen3", m, no_prompt), "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplateTest, Qwen3StripsReasoningFromEarlierAssistantTurns) {
  std::vector<ChatMessage> m = {
      {"user", "Q1", {}},
      {"assistant", "<think>\nplan one\n</think>\n\nA1", {}},
      {"user", "Q2", {}},
      {"assistant", "<think>\nplan two\n</think>\n\nA2", {}},
  };
  // The first answer precedes the last user turn: its reasoning goes. The
  // final answer follows it and keeps its reasoning.
  EXPECT_EQ(render("qwen3", m, {.add_generation_prompt = false, .enable_thinking = std::nullopt}),
            "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
            "<|im_start|>user\nQ2<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nplan two\n</think>\n\nA2<|im_end|>\n");
  // reasoning_content given separately, and tool results after the query.
  std::vector<ChatMessage> t = {
      {"system", "S", {}},
      {"user", "Q", {}},
      {"assistant", "calling", std::string("why")},
      {"tool", "r1", {}},
      {"tool", "r2", {}},
      {"assistant", "done", std::string("")},
  };
  EXPECT_EQ(render("qwen3", t, {.add_generation_prompt = false, .enable_thinking = std::nullopt}),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nwhy\n</think>\n\ncalling<|im_end|>\n"
            "<|im_start|>user\n<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\ndone<|im_end|>\n");
}

TEST(ChatTemplateTest, Llama3TrimsContentAndStartsWithBos) {
  std::vector<ChatMessage> m = {{"system", "  be brief \n", {}}, {"user", "\tHi ", {}}};
  EXPECT_EQ(render("llama3", m),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nbe brief<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplateTest, UnknownTemplateIsUnimplementedNamingIt) {
  auto t = ChatTemplate::recognize("{% for message in messages %}{{ message.content }}{% endfor %}", "");
  ASSERT_FALSE(t.is_ok());
  EXPECT_EQ(t.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(t.status().message().find("not recognized"), std::string::npos);
  EXPECT_NE(t.status().message().find("{% for message"), std::string::npos);
  // One character off a known template is not that template.
  auto cfg = read_json_file(testing::tokenizer_dir("llama3") + "/tokenizer_config.json");
  ASSERT_TRUE(cfg.is_ok());
  EXPECT_TRUE(ChatTemplate::recognize((*cfg)["chat_template"].get<std::string>(), "<s>").is_ok());
  EXPECT_FALSE(ChatTemplate::recognize((*cfg)["chat_template"].get<std::string>() + " ", "<s>").is_ok());
}

TEST(ChatTemplateTest, BadMessagesAreClearErrors) {
  EXPECT_EQ(real_tokenizer("qwen3").apply_chat_template({}).status().code(), StatusCode::kInvalidArgument);
  auto bad_role = real_tokenizer("qwen3").apply_chat_template({{"wizard", "x", {}}});
  EXPECT_NE(bad_role.status().message().find("wizard"), std::string::npos);

  auto tool_calls = parse_chat_messages(Json::parse(
      R"([{"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f"}}]}])"));
  EXPECT_EQ(tool_calls.status().code(), StatusCode::kUnimplemented);
  auto image = parse_chat_messages(Json::parse(R"([{"role": "user", "content": [{"type": "image_url"}]}])"));
  EXPECT_EQ(image.status().code(), StatusCode::kUnimplemented);
  EXPECT_FALSE(parse_chat_messages(Json::parse(R"([{"content": "x"}])")).is_ok());
  EXPECT_FALSE(parse_chat_messages(Json::parse(R"({"role": "user"})")).is_ok());

  auto parts = parse_chat_messages(Json::parse(
      R"([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])"));
  ASSERT_TRUE(parts.is_ok());
  EXPECT_EQ((*parts)[0].content, "a\nb");
}

}  // namespace
}  // namespace baton
