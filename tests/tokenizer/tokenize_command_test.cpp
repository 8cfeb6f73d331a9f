// `baton tokenize` end to end: runs the built binary.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

#include "tokenizer_test_util.h"

namespace baton {
namespace {

struct Output {
  int rc;
  std::string out;
};

Output run_baton(const std::string& args) {
  const std::string cmd = std::string(BATON_BINARY) + " tokenize " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  Output o{-1, {}};
  if (p == nullptr) return o;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) o.out.append(buf.data(), n);
  o.rc = WEXITSTATUS(pclose(p));
  return o;
}

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
  const std::string args = "--tokenizer " + testing::tokenizer_dir("qwen3") + " --messages '" +
                           fx["messages"].dump() + "' --enable-thinking false --json";
  Output chat = run_baton(args);
  ASSERT_EQ(chat.rc, 0) << chat.out;
  Json out = Json::parse(chat.out);
  EXPECT_EQ(out["prompt"], fx["rendered"]);
  EXPECT_EQ(out["ids"], fx["ids"]);
  Output unknown = run_baton("--tokenizer " + testing::tokenizer_dir("qwen3") + " --messages '[{\"role\": \"x\"}]'");
  EXPECT_EQ(unknown.rc, 1);
  EXPECT_NE(unknown.out.find("unknown role 'x'"), std::string::npos) << unknown.out;
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
