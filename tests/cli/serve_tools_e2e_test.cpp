// The official openai npm client runs a whole tool-calling exchange against a
// real `baton serve` on the default model (Qwen3's chat template, hermes tool
// calls). A random-weight model cannot write a tool call, so the outputs are
// forced with the --scripted-output test hook (backend/scripted_backend.h):
// the backend runs every step for real and the scripted tokens replace what
// it sampled.
#include <fstream>

#include <gtest/gtest.h>

#include "common/json.h"
#include "server/serve_process.h"

namespace baton::testing {
namespace {

const char* kCall = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
const char* kAnswer = "It is sunny in Paris.";

TEST(ServeToolsTest, OpenAiNpmClientToolExchangeStreamingAndNot) {
  std::string model = default_model_dir();
  ASSERT_FALSE(model.empty());
  std::string script = test_tmp_dir() + "/tool_script.json";
  {
    // Request i gets script i: call, answer (plain), call, answer (streaming).
    std::ofstream f(script);
    f << Json::array({kCall, kAnswer, kCall, kAnswer}).dump();
  }
  std::string error;
  auto server = ServeProcess::start(
      {"--model", model, "--served-model-name", "default", "--max-model-len", "2048", "--scripted-output", script},
      &error);
  ASSERT_NE(server, nullptr) << error;
  std::string js = std::filesystem::path(BATON_TEST_DATA).parent_path() / "server" / "openai_tools_client.mjs";
  int rc = 0;
  std::string out = capture_output("node " + js + " " + server->url() + " default 2>&1", &rc);
  ASSERT_EQ(rc, 0) << out << "\n" << server->log();
  Json r = Json::parse(out, nullptr, false);
  ASSERT_FALSE(r.is_discarded()) << out;
  for (const char* mode : {"plain", "stream"}) {
    SCOPED_TRACE(mode);
    const Json& x = r[mode];
    EXPECT_EQ(x["first_finish_reason"], "tool_calls");
    EXPECT_TRUE(x["content"].is_null()) << x["content"];
    ASSERT_EQ(x["tool_calls"].size(), 1u) << x.dump();
    EXPECT_EQ(x["tool_calls"][0]["function"]["name"], "get_weather");
    EXPECT_EQ(Json::parse(x["tool_calls"][0]["function"]["arguments"].get<std::string>()), (Json{{"city", "Paris"}}));
    EXPECT_FALSE(x["tool_calls"][0]["id"].get<std::string>().empty());
    EXPECT_EQ(x["answer"], kAnswer);
    EXPECT_EQ(x["answer_finish_reason"], "stop");
    EXPECT_TRUE(x["answer_tool_calls"].is_null());
  }
  EXPECT_EQ(server->terminate(30.0), 0) << server->log();
}

}  // namespace
}  // namespace baton::testing
