// `baton tokenize` end to end: runs the built binary.
#include <gtest/gtest.h>

#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "cli/run_baton.h"
#include "tokenizer/chat_template.h"

#include "tokenizer/tokenizer_test_util.h"

namespace baton {
namespace {

using Output = testing::BatonOutput;

Output run_baton(const std::string& args) { return testing::run_baton("tokenize " + args); }

TEST(TokenizeCommandTest, EncodesAndDecodes) {
  const std::string dir = testing::tokenizer_dir("llama3");
  Output enc = run_baton("--tokenizer " + dir + " --text 'Hello, world!' --json");
  EXPECT_EQ(enc.rc, 0) << enc.out;
  EXPECT_EQ(enc.out, "{\"ids\":[9906,11,1917,0]}\n");
  Output dec = run_baton("--tokenizer " + dir + " --ids 9906,11,1917,0");
  EXPECT_EQ(dec.rc, 0);
  EXPECT_EQ(dec.out, "Hello, world!\n");
  Output special = run_baton("--tokenizer " + dir + " --ids 128000,13347 --no-special --json");
  EXPECT_EQ(special.out, "{\"text\":\"Hi\"}\n");
}

TEST(TokenizeCommandTest, EncodesAndDecodesEveryFamily) {
  // The fixture's "Hello, world!" case of each tokenizer family, both ways.
  for (const char* name : {"llama2", "gemma3", "gptoss", "deepseek_v3", "llama3_1"}) {
    Json expected;
    const Json fx = testing::fixture(name);
    for (const auto& c : fx["cases"]) {
      if (c["text"] == "Hello, world!") expected = c;
    }
    ASSERT_FALSE(expected.is_null()) << name;
    const std::string dir = testing::tokenizer_dir(name);
    Output enc = run_baton("--tokenizer " + dir + " --text 'Hello, world!' --no-special --json");
    ASSERT_EQ(enc.rc, 0) << name << ": " << enc.out;
    EXPECT_EQ(Json::parse(enc.out)["ids"], expected["ids"]) << name;
    std::string ids;
    for (const auto& id : expected["ids"]) ids += (ids.empty() ? "" : ",") + std::to_string(id.get<int>());
    Output dec = run_baton("--tokenizer " + dir + " --ids " + ids);
    EXPECT_EQ(dec.rc, 0) << name;
    EXPECT_EQ(dec.out, "Hello, world!\n") << name;
  }
}

TEST(TokenizeCommandTest, RendersChatMessages) {
  // The first Qwen3 chat case of the fixture, through the command line.
  Json fx = testing::fixture("qwen3")["chat_template_cases"][0];
  const std::string args = "--tokenizer " + testing::tokenizer_dir("qwen3") + " --messages '" + fx["messages"].dump() +
                           "' --enable-thinking false --json";
  Output chat = run_baton(args);
  ASSERT_EQ(chat.rc, 0) << chat.out;
  Json out = Json::parse(chat.out);
  EXPECT_EQ(out["prompt"], fx["rendered"]);
  EXPECT_EQ(out["ids"], fx["ids"]);
  Output bad = run_baton("--tokenizer " + testing::tokenizer_dir("qwen3") + " --messages '[{\"role\": 1}]'");
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.out.find("messages[0] has no string 'role'"), std::string::npos) << bad.out;
}

// A scratch folder for request files and tokenizer folders.
struct Scratch {
  Scratch() {
    dir = std::filesystem::temp_directory_path() / ("baton_tokenize_chat_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
  }
  ~Scratch() { std::filesystem::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string path = (dir / name).string();
    EXPECT_TRUE(write_file(path, text).is_ok());
    return path;
  }
  std::filesystem::path dir;
};

TEST(TokenizeCommandTest, ChatRequestFileWithTools) {
  // The Qwen3 "tools" case of the chat-template fixtures, as a request file.
  auto cases = read_json_file(std::string(BATON_TEST_DATA) + "/fixtures/chat_templates/cases.json");
  ASSERT_TRUE(cases.is_ok());
  Json fx;
  for (const auto& c : (*cases)["cases"]) {
    if (c["template"] == "qwen3" && c["case"] == "tools") fx = c;
  }
  ASSERT_FALSE(fx.is_null());
  Scratch scratch;
  // Written by hand so the tool's keys keep the fixture's order ("type" before "function").
  const std::string request =
      R"({"messages": )" + fx["messages"].dump() +
      R"(, "tools": [{"type": "function", "function": )"
      R"({"name": "get_weather", "description": "Weather for a city", "parameters": {"type": "object", )"
      R"("properties": {"city": {"type": "string"}}, "required": ["city"]}}}], "add_generation_prompt": true})";
  const std::string file = scratch.write("request.json", request);
  Output out = run_baton("--tokenizer " + testing::tokenizer_dir("qwen3") + " --chat " + file + " --json");
  ASSERT_EQ(out.rc, 0) << out.out;
  Json j = Json::parse(out.out);
  EXPECT_EQ(j["text"], fx["rendered"]);
  auto ids = testing::real_tokenizer("qwen3").encode(fx["rendered"].get<std::string>(), false);
  ASSERT_TRUE(ids.is_ok());
  EXPECT_EQ(j["ids"], Json(*ids));

  // chat_template_kwargs and add_generation_prompt reach the template.
  const std::string thinking = scratch.write(
      "thinking.json",
      R"({"messages": [{"role": "user", "content": "Hi"}], "chat_template_kwargs": {"enable_thinking": false}})");
  Output off = run_baton("--tokenizer " + testing::tokenizer_dir("qwen3") + " --chat " + thinking + " --json");
  ASSERT_EQ(off.rc, 0) << off.out;
  EXPECT_EQ(Json::parse(off.out)["text"],
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
}

TEST(TokenizeCommandTest, ChatTemplateErrorExitsNonZeroWithItsMessage) {
  Scratch scratch;
  std::filesystem::create_directories(scratch.dir / "tok");
  std::filesystem::create_symlink(testing::tokenizer_dir("qwen3") + "/tokenizer.json",
                                  scratch.dir / "tok/tokenizer.json");
  scratch.write(
      "tok/tokenizer_config.json",
      R"({"chat_template": "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation must start with a user message') }}{% endif %}ok"})");
  const std::string request = scratch.write("r.json", R"({"messages": [{"role": "assistant", "content": "x"}]})");
  Output out = run_baton("--tokenizer " + (scratch.dir / "tok").string() + " --chat " + request);
  EXPECT_EQ(out.rc, 1);
  EXPECT_NE(out.out.find("Conversation must start with a user message"), std::string::npos) << out.out;

  const std::string bad = scratch.write("bad.json", R"({"messages": "not a list"})");
  Output bad_out = run_baton("--tokenizer " + testing::tokenizer_dir("qwen3") + " --chat " + bad);
  EXPECT_EQ(bad_out.rc, 1);
  EXPECT_NE(bad_out.out.find("'messages' must be an array"), std::string::npos) << bad_out.out;
  Output missing = run_baton("--tokenizer " + testing::tokenizer_dir("qwen3") + " --chat /nonexistent.json");
  EXPECT_EQ(missing.rc, 1);
  EXPECT_NE(missing.out.find("cannot open"), std::string::npos) << missing.out;
}

TEST(TokenizeCommandTest, BadInputIsAClearErrorAndExitCode) {
  const std::string dir = testing::tokenizer_dir("qwen3");
  Output bad_ids = run_baton("--tokenizer " + dir + " --ids 1,two");
  EXPECT_EQ(bad_ids.rc, 1);
  EXPECT_NE(bad_ids.out.find("'two' is not a token id"), std::string::npos) << bad_ids.out;
  Output bad_utf8 = run_baton("--tokenizer " + dir + " --text \"$(printf 'ok\\377')\"");
  EXPECT_EQ(bad_utf8.rc, 1);
  EXPECT_NE(bad_utf8.out.find("not valid UTF-8"), std::string::npos) << bad_utf8.out;
  Output both = run_baton("--tokenizer " + dir + " --text a --ids 1");
  EXPECT_EQ(both.rc, 1);
  Output missing = run_baton("--tokenizer /nonexistent --text a");
  EXPECT_EQ(missing.rc, 1);
  EXPECT_NE(missing.out.find("no tokenizer.json"), std::string::npos) << missing.out;
  EXPECT_EQ(run_baton("--help").rc, 0);
}

}  // namespace
}  // namespace baton
