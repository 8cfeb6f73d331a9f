// Chat templates beyond the fixture cases, through the real tokenizers:
// Qwen3's reasoning handling and thinking switch, Llama-3's trimming; any
// template text (no longer a fixed list), where templates come from, the
// options, and bad messages.
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>

#include "tokenizer_test_util.h"

namespace baton {
namespace {

using testing::real_tokenizer;

ChatTemplateOptions without_prompt() {
  ChatTemplateOptions o;
  o.add_generation_prompt = false;
  return o;
}

ChatMessage msg(std::string role, std::string content, std::optional<std::string> reasoning = std::nullopt) {
  ChatMessage m;
  m.role = std::move(role);
  m.content = std::move(content);
  m.reasoning_content = std::move(reasoning);
  return m;
}

std::string render(const char* name, const std::vector<ChatMessage>& messages, ChatTemplateOptions options = {}) {
  auto r = real_tokenizer(name).apply_chat_template(messages, options);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : std::string();
}

// A scratch folder, removed at the end of the test.
struct TempDir {
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("baton_chat_template_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  void write(const std::string& name, const std::string& text) const {
    ASSERT_TRUE(write_file((path / name).string(), text).is_ok());
  }
  std::filesystem::path path;
  static inline int counter = 0;
};

TEST(ChatTemplateTest, BothRealTemplatesLoadThroughTheTokenizer) {
  EXPECT_EQ(*real_tokenizer("qwen3").chat_template_family(), ChatTemplateFamily::kJinja);
  EXPECT_EQ(*real_tokenizer("llama3").chat_template_family(), ChatTemplateFamily::kJinja);
}

TEST(ChatTemplateTest, Qwen3ThinkingOnOffAndNoGenerationPrompt) {
  std::vector<ChatMessage> m = {msg("user", "Hi")};
  EXPECT_EQ(render("qwen3", m), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  ChatTemplateOptions on;
  on.enable_thinking = true;
  EXPECT_EQ(render("qwen3", m, on), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  ChatTemplateOptions off;
  off.enable_thinking = false;
  EXPECT_EQ(render("qwen3", m, off), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  ChatTemplateOptions no_prompt;
  no_prompt.add_generation_prompt = false;
  EXPECT_EQ(render("qwen3", m, no_prompt), "<|im_start|>user\nHi<|im_end|>\n");
}

TEST(ChatTemplateTest, Qwen3StripsReasoningFromEarlierAssistantTurns) {
  std::vector<ChatMessage> m = {
      msg("user", "Q1"),
      msg("assistant", "<think>\nplan one\n</think>\n\nA1"),
      msg("user", "Q2"),
      msg("assistant", "<think>\nplan two\n</think>\n\nA2"),
  };
  // The first answer precedes the last user turn: its reasoning goes. The
  // final answer follows it and keeps its reasoning.
  EXPECT_EQ(render("qwen3", m, without_prompt()),
            "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n"
            "<|im_start|>user\nQ2<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nplan two\n</think>\n\nA2<|im_end|>\n");
  // reasoning_content given separately, and tool results after the query.
  std::vector<ChatMessage> t = {
      msg("system", "S"), msg("user", "Q"),  msg("assistant", "calling", "why"),
      msg("tool", "r1"),  msg("tool", "r2"), msg("assistant", "done", ""),
  };
  EXPECT_EQ(render("qwen3", t, without_prompt()),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nwhy\n</think>\n\ncalling<|im_end|>\n"
            "<|im_start|>user\n<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n<think>\n\n</think>\n\ndone<|im_end|>\n");
}

TEST(ChatTemplateTest, Llama3TrimsContentAndStartsWithBos) {
  std::vector<ChatMessage> m = {msg("system", "  be brief \n"), msg("user", "\tHi ")};
  EXPECT_EQ(render("llama3", m),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nbe brief<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplateTest, AnyTemplateTextRenders) {
  // One character off a known template, and a template of our own: both
  // render (nothing is recognised by fingerprint any more).
  auto cfg = read_json_file(testing::tokenizer_dir("llama3") + "/tokenizer_config.json");
  ASSERT_TRUE(cfg.is_ok());
  auto edited = ChatTemplate::recognize((*cfg)["chat_template"].get<std::string>() + "{{ '!' }}", "<s>");
  ASSERT_TRUE(edited.is_ok()) << edited.status().to_string();
  EXPECT_EQ(
      *edited->render({msg("user", "Hi")}, {}),
      "<s><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n!");
  auto own = ChatTemplate::parse("{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{{ eos_token }}",
                                 {.bos_token = "", .eos_token = "</s>", .unk_token = "", .pad_token = ""});
  ASSERT_TRUE(own.is_ok());
  EXPECT_EQ(*own->render({msg("system", "S"), msg("user", "U")}, {}), "[system] S\n[user] U\n</s>");
  auto broken = ChatTemplate::parse("{% for m in messages %}", {});
  ASSERT_FALSE(broken.is_ok());
  EXPECT_EQ(broken.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(broken.status().message().find("endfor"), std::string::npos) << broken.status().message();
}

TEST(ChatTemplateTest, LoadsFromNamedListOrJinjaFile) {
  TempDir named;
  named.write("tokenizer_config.json", R"({"eos_token": {"content": "</s>"}, "chat_template": [
      {"name": "tool_use", "template": "tools"}, {"name": "default", "template": "default {{ eos_token }}"}]})");
  auto t = ChatTemplate::load(named.path.string());
  ASSERT_TRUE(t.is_ok()) << t.status().to_string();
  EXPECT_EQ(*t->render({msg("user", "x")}, {}), "default </s>");

  TempDir file;
  file.write("tokenizer_config.json", R"({"bos_token": "<bos>"})");
  file.write("chat_template.jinja", "{{ bos_token }}{{ messages[0].content }}\n");
  auto f = ChatTemplate::load(file.path.string());
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(*f->render({msg("user", "x")}, {}), "<bos>x");  // the trailing newline goes, as in jinja2

  TempDir none;
  none.write("tokenizer_config.json", "{}");
  EXPECT_EQ(ChatTemplate::load(none.path.string()).status().code(), StatusCode::kNotFound);
}

TEST(ChatTemplateTest, OptionsReachTheTemplate) {
  auto t = ChatTemplate::parse(
      "{{ tools | length if tools else 'none' }}|{{ add_generation_prompt }}|{{ enable_thinking | default('unset') }}"
      "|{{ custom }}",
      {});
  ASSERT_TRUE(t.is_ok());
  const std::vector<ChatMessage> m = {msg("user", "x")};
  EXPECT_EQ(*t->render(m, {}), "none|True|unset|");
  ChatTemplateOptions o;
  o.add_generation_prompt = false;
  o.enable_thinking = true;
  o.tools = OrderedJson::parse(R"([{"type": "function", "function": {"name": "f"}}])");
  o.chat_template_kwargs = OrderedJson::parse(R"({"custom": "c", "enable_thinking": false})");
  EXPECT_EQ(*t->render(m, o), "1|False|False|c");  // the request's kwargs win over the shorthand
  o.chat_template_kwargs = OrderedJson::parse(R"({"messages": []})");
  EXPECT_EQ(t->render(m, o).status().code(), StatusCode::kInvalidArgument);
  o.chat_template_kwargs = nullptr;
  o.tools = OrderedJson::parse(R"({"not": "a list"})");
  EXPECT_EQ(t->render(m, o).status().code(), StatusCode::kInvalidArgument);
}

TEST(ChatTemplateTest, RenderLimitsApply) {
  auto t = ChatTemplate::parse(
      "{% for m in messages %}{% for i in range(1000) %}{{ m.content }}{% endfor %}{% endfor %}", {});
  ASSERT_TRUE(t.is_ok());
  jinja::RenderLimits limits;
  limits.max_output_bytes = 4096;
  t->set_limits(limits);
  auto out = t->render({msg("user", "0123456789")}, {});
  ASSERT_FALSE(out.is_ok());
  EXPECT_NE(out.status().message().find("output limit"), std::string::npos) << out.status().message();
}

TEST(ChatTemplateTest, BadMessagesAreClearErrors) {
  EXPECT_EQ(real_tokenizer("qwen3").apply_chat_template({}).status().code(), StatusCode::kInvalidArgument);

  auto calls = parse_chat_messages(Json::parse(
      R"([{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function",
           "function": {"name": "f", "arguments": "{\"b\": 1, \"a\": 2}"}}]}, {"role": "tool", "tool_call_id": "c", "content": "r"}])"));
  ASSERT_TRUE(calls.is_ok()) << calls.status().to_string();
  EXPECT_EQ((*calls)[0].tool_calls[0]["function"]["arguments"]["a"], 2);  // parsed, as vLLM passes it
  EXPECT_EQ((*calls)[1].tool_call_id, "c");
  auto ordered = parse_chat_messages(*parse_ordered_json(
      R"([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{\"b\": 1, \"a\": 2}"}}]}])"));
  ASSERT_TRUE(ordered.is_ok());
  EXPECT_EQ((*ordered)[0].tool_calls[0]["function"]["arguments"].dump(), R"({"b":1,"a":2})");  // order kept
  auto bad_args = parse_chat_messages(
      Json::parse(R"([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{not json"}}]}])"));
  EXPECT_EQ(bad_args.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_args.status().message().find("arguments is not valid JSON"), std::string::npos);
  EXPECT_FALSE(parse_chat_messages(Json::parse(R"([{"role": "assistant", "tool_calls": [{"id": 1}]}])")).is_ok());
  auto image = parse_chat_messages(Json::parse(R"([{"role": "user", "content": [{"type": "image_url"}]}])"));
  EXPECT_EQ(image.status().code(), StatusCode::kUnimplemented);
  EXPECT_FALSE(parse_chat_messages(Json::parse(R"([{"content": "x"}])")).is_ok());
  EXPECT_FALSE(parse_chat_messages(Json::parse(R"({"role": "user"})")).is_ok());
  EXPECT_FALSE(parse_chat_messages(Json::parse(R"([{"role": "user", "content": 5}])")).is_ok());
  EXPECT_FALSE(parse_chat_messages(Json::parse(R"([{"role": "user", "name": 5}])")).is_ok());

  auto parts = parse_chat_messages(
      Json::parse(R"([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])"));
  ASSERT_TRUE(parts.is_ok());
  EXPECT_EQ((*parts)[0].content, "a\nb");
}

}  // namespace
}  // namespace baton
