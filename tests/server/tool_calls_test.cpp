// Chat with tools and n > 1 through the whole HTTP service, over the fake
// engine (scripted output) and the byte-level fake codec.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "server_fixture.h"
#include "support/wait.h"

namespace baton::testing {
namespace {

Json weather_tools() {
  Json params = {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}};
  Json weather = {
      {"type", "function"},
      {"function", {{"name", "get_weather"}, {"description", "Weather in a city"}, {"parameters", params}}}};
  Json time = {{"type", "function"}, {"function", {{"name", "get_time"}}}};
  return Json::array({weather, time});
}

Json chat_with_tools(Json extra = Json::object()) {
  Json body = {{"messages", {{{"role", "user"}, {"content", "weather in Paris?"}}}},
               {"tools", weather_tools()},
               {"max_tokens", 200}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

std::vector<Json> data_events(const std::string& body) {
  std::vector<Json> out;
  for (const std::string& e : sse_events(body)) {
    if (e != "[DONE]") out.push_back(Json::parse(e));
  }
  return out;
}

class ToolCallsTest : public ServerFixture {
 protected:
  void start(std::string script, ToolCallFormat format = ToolCallFormat::kHermes) {
    FakeEngine::Options eo;
    eo.scripted_output = std::move(script);
    ApiServerOptions o = default_options();
    o.service.tool_call_format = format;
    start_server(eo, o);
  }
  std::string last_prompt() {
    std::string s;
    for (int32_t id : engine_->last_request().prompt_ids) s += static_cast<char>(id);
    return s;
  }
};

const char* kCall = "Sure.<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";

TEST_F(ToolCallsTest, NonStreamingCallComesBackAsToolCalls) {
  start(kCall);
  TestResponse r = post("/v1/chat/completions", chat_with_tools());
  ASSERT_EQ(r.status, 200) << r.body;
  Json body = Json::parse(r.body);
  const Json& choice = body["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  EXPECT_EQ(choice["message"]["content"], "Sure.");
  ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u);
  const Json& call = choice["message"]["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], "get_weather");
  EXPECT_EQ(Json::parse(call["function"]["arguments"].get<std::string>()), (Json{{"city", "Paris"}}));
  EXPECT_EQ(call["id"].get<std::string>().rfind("chatcmpl-tool-", 0), 0u);
  // The tools were rendered into the prompt.
  EXPECT_NE(last_prompt().find("<|tool|>get_weather"), std::string::npos);
}

TEST_F(ToolCallsTest, StreamingSendsContentThenTheCallThenTheReason) {
  start(kCall);
  TestResponse r = post("/v1/chat/completions", chat_with_tools({{"stream", true}}));
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<Json> events = data_events(r.body);
  std::string content;
  std::vector<Json> calls;
  Json reason;
  for (const Json& e : events) {
    const Json& delta = e["choices"][0]["delta"];
    if (delta.contains("content")) content += delta["content"].get<std::string>();
    if (delta.contains("tool_calls")) {
      for (const Json& c : delta["tool_calls"]) calls.push_back(c);
    }
    if (!e["choices"][0]["finish_reason"].is_null()) reason = e["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(content, "Sure.");  // no byte of the call leaks into the content
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0]["index"], 0);
  EXPECT_EQ(calls[0]["function"]["name"], "get_weather");
  EXPECT_EQ(Json::parse(calls[0]["function"]["arguments"].get<std::string>()), (Json{{"city", "Paris"}}));
  EXPECT_EQ(reason, "tool_calls");
}

TEST_F(ToolCallsTest, NamedToolChoiceOpensTheCallInThePrompt) {
  start("{\"city\": \"Oslo\"}}\n</tool_call>");
  Json choice = {{"type", "function"}, {"function", {{"name", "get_weather"}}}};
  TestResponse r = post("/v1/chat/completions", chat_with_tools({{"tool_choice", choice}}));
  ASSERT_EQ(r.status, 200) << r.body;
  std::string prompt = last_prompt();
  std::string opening = tool_call_opening(ToolCallFormat::kHermes, "get_weather");
  ASSERT_GE(prompt.size(), opening.size());
  EXPECT_EQ(prompt.substr(prompt.size() - opening.size()), opening);
  Json body = Json::parse(r.body);
  const Json& call = body["choices"][0]["message"]["tool_calls"][0];
  EXPECT_EQ(call["function"]["name"], "get_weather");
  EXPECT_EQ(Json::parse(call["function"]["arguments"].get<std::string>()), (Json{{"city", "Oslo"}}));
  EXPECT_TRUE(body["choices"][0]["message"]["content"].is_null());
}

TEST_F(ToolCallsTest, ToolChoiceNoneRendersNoToolsAndParsesNothing) {
  start(kCall);
  TestResponse r = post("/v1/chat/completions", chat_with_tools({{"tool_choice", "none"}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(last_prompt().find("<|tool|>"), std::string::npos);
  Json body = Json::parse(r.body);
  EXPECT_EQ(body["choices"][0]["message"]["content"], kCall);
  EXPECT_FALSE(body["choices"][0]["message"].contains("tool_calls"));
}

TEST_F(ToolCallsTest, ToolHistoryReachesTheTemplate) {
  start("It is sunny.");
  Json messages = {{{"role", "user"}, {"content", "weather in Paris?"}},
                   {{"role", "assistant"},
                    {"content", nullptr},
                    {"tool_calls",
                     {{{"id", "call_1"},
                       {"type", "function"},
                       {"function", {{"name", "get_weather"}, {"arguments", "{\"city\": \"Paris\"}"}}}}}}},
                   {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "sunny, 21C"}}};
  TestResponse r = post("/v1/chat/completions", chat_with_tools({{"messages", messages}}));
  ASSERT_EQ(r.status, 200) << r.body;
  std::string prompt = last_prompt();
  // Arguments reach the template layer as the JSON text sent (it parses them in order).
  EXPECT_NE(prompt.find(R"("arguments":"{\"city\": \"Paris\"}")"), std::string::npos) << prompt;
  EXPECT_NE(prompt.find("<|tool|>sunny, 21C"), std::string::npos) << prompt;
  Json body = Json::parse(r.body);
  EXPECT_EQ(body["choices"][0]["message"]["content"], "It is sunny.");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
}

TEST_F(ToolCallsTest, BadToolRequestsAreRefusedNamingTheField) {
  start(kCall);
  struct Case {
    Json extra;
    std::string param, part;
  };
  Json bad_args_msg = {
      {{"role", "assistant"},
       {"tool_calls", {{{"type", "function"}, {"function", {{"name", "f"}, {"arguments", "{oops"}}}}}}}};
  std::vector<Case> cases = {
      {{{"tools", "x"}}, "tools", "must be a list"},
      {{{"tools", {{{"type", "function"}, {"function", {{"name", 7}}}}}}}, "tools", "name"},
      {{{"tools", {{{"type", "retrieval"}}}}}, "tools", "tools[0]"},
      {{{"tool_choice", "maybe"}}, "tool_choice", "maybe"},
      {{{"tool_choice", {{"type", "function"}, {"function", {{"name", "nope"}}}}}}, "tool_choice", "nope"},
      {{{"tool_choice", "required"}, {"tools", nullptr}}, "tool_choice", "needs 'tools'"},
      {{{"messages", bad_args_msg}}, "messages", "arguments"},
      {{{"messages", {{{"role", "user"}, {"content", {{{"type", 1}, {"text", "x"}}}}}}}}, "messages", ".type must be"},
      {{{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}}}, "messages", "image_url"},
      {{{"parallel_tool_calls", "yes"}}, "parallel_tool_calls", "boolean"},
      {{{"chat_template_kwargs", 3}}, "chat_template_kwargs", "object"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.extra.dump());
    TestResponse r = post("/v1/chat/completions", chat_with_tools(c.extra));
    ASSERT_EQ(r.status, 400) << r.body;
    Json err = Json::parse(r.body)["error"];
    EXPECT_EQ(err["param"], c.param);
    EXPECT_NE(err["message"].get<std::string>().find(c.part), std::string::npos) << err["message"];
  }
  EXPECT_EQ(engine_->num_submitted(), 0);
}

TEST_F(ToolCallsTest, ToolsWithoutAParserAreRefused) {
  start(kCall, ToolCallFormat::kNone);
  TestResponse r = post("/v1/chat/completions", chat_with_tools());
  ASSERT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("--tool-call-parser"), std::string::npos);
  EXPECT_EQ(post("/v1/chat/completions", chat_with_tools({{"tool_choice", "none"}})).status, 200);
}

TEST_F(ToolCallsTest, ParallelToolCallsFalseKeepsTheFirstCall) {
  std::string two = std::string(kCall) + "\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>";
  start(two);
  Json body = Json::parse(post("/v1/chat/completions", chat_with_tools()).body);
  EXPECT_EQ(body["choices"][0]["message"]["tool_calls"].size(), 2u);
  body = Json::parse(post("/v1/chat/completions", chat_with_tools({{"parallel_tool_calls", false}})).body);
  ASSERT_EQ(body["choices"][0]["message"]["tool_calls"].size(), 1u);
  EXPECT_EQ(body["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather");
}

class ChoicesTest : public ServerFixture {};

TEST_F(ChoicesTest, NChoicesEachWithItsIndexAndSummedUsage) {
  start_server();
  Json body = {{"prompt", "hello"}, {"max_tokens", 5}, {"n", 3}};
  TestResponse r = post("/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  Json out = Json::parse(r.body);
  ASSERT_EQ(out["choices"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(out["choices"][i]["index"], i);
    EXPECT_EQ(out["choices"][i]["text"], fake_text(5, 5));
  }
  EXPECT_EQ(out["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(out["usage"]["completion_tokens"], 15);
  EXPECT_EQ(engine_->num_submitted(), 3);
}

TEST_F(ChoicesTest, StreamingChatInterleavesChoicesAndEndsOnce) {
  start_server();
  Json body = {{"messages", {{{"role", "user"}, {"content", "hey"}}}},
               {"max_tokens", 4},
               {"n", 2},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  TestResponse r = post("/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<std::string> raw = sse_events(r.body);
  EXPECT_EQ(std::count(raw.begin(), raw.end(), "[DONE]"), 1);
  EXPECT_EQ(raw.back(), "[DONE]");
  std::string text[2];
  int roles[2] = {0, 0}, reasons[2] = {0, 0};
  Json usage;
  for (const Json& e : data_events(r.body)) {
    if (e["choices"].empty()) {
      usage = e["usage"];
      continue;
    }
    int i = e["choices"][0]["index"].get<int>();
    ASSERT_TRUE(i == 0 || i == 1);
    const Json& delta = e["choices"][0]["delta"];
    if (delta.contains("role")) ++roles[i];
    if (delta.contains("content")) text[i] += delta["content"].get<std::string>();
    if (!e["choices"][0]["finish_reason"].is_null()) ++reasons[i];
  }
  std::string prompt = "<|user|>hey\n<|assistant|>";
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(roles[i], 1);
    EXPECT_EQ(reasons[i], 1);
    EXPECT_EQ(text[i], fake_text(prompt.size(), 4));
  }
  EXPECT_EQ(usage["completion_tokens"], 8);
}

TEST_F(ChoicesTest, SeededChoicesGetDistinctSeedsAndPdRefusesN) {
  start_server();
  TestResponse r = post("/v1/completions", Json{{"prompt", "x"}, {"max_tokens", 2}, {"n", 2}, {"seed", 7}});
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(engine_->last_request().sampling.seed.value_or(0), 8u);  // the second choice: 7 + 1
  r = post("/v1/completions",
           Json{{"prompt", "x"}, {"max_tokens", 2}, {"n", 2}, {"kv_transfer_params", {{"do_remote_decode", true}}}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("kv_transfer_params"), std::string::npos);
}

TEST_F(ChoicesTest, ClientGoneAbortsEveryChoice) {
  FakeEngine::Options slow;
  slow.token_delay_s = 0.01;
  start_server(slow, default_options());
  boost::asio::io_context ioc;
  auto s = connect_to(ioc, port_);
  std::string body = Json{{"prompt", "abc"}, {"max_tokens", 400}, {"n", 4}, {"stream", true}}.dump();
  boost::asio::write(s, boost::asio::buffer(build_request("POST", "/v1/completions", body)));
  char buf[256];
  ASSERT_GT(s.read_some(boost::asio::buffer(buf)), 0u);  // the stream has started
  s.close();
  ::baton::testing::wait_until([&] { return engine_->num_aborted() >= 4; }, 5, 5);
  EXPECT_EQ(engine_->num_aborted(), 4);
  EXPECT_EQ(engine_->stats().num_running, 0);
}

}  // namespace
}  // namespace baton::testing
