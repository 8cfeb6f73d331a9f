// `baton serve` under hostile input (issue 14): numbers out of range, wrong
// types, bad UTF-8, deep nesting, faults injected in-process. Each probe ends
// in a 4xx (or a 500 for an injected fault) naming the problem, and the
// server serves the next request.
#include <thread>

#include "server_fixture.h"
#include "support/wait.h"

namespace baton::testing {
namespace {

struct Probe {
  std::string name;
  std::string body;  // raw
  int status;
  std::string param;         // expected error.param ("" = null)
  std::string message_part;  // expected inside error.message
};

class HostileInputTest : public ServerFixture {
 protected:
  void SetUp() override {
    ApiServerOptions o = default_options();
    o.http.limits.max_body_bytes = 1 << 20;  // room for the nesting probe
    start_server(FakeEngine::Options{}, o);
  }

  void expect_refused(const TestResponse& r, const Probe& p) {
    ASSERT_EQ(r.status, p.status) << p.name << ": " << r.body.substr(0, 400) << r.error;
    Json j = r.json();
    ASSERT_TRUE(j.is_object() && j.contains("error")) << p.name << ": " << r.body.substr(0, 400);
    const Json& e = j["error"];
    ASSERT_TRUE(e["message"].is_string()) << p.name;
    EXPECT_NE(e["message"].get<std::string>().find(p.message_part), std::string::npos)
        << p.name << ": message was " << e["message"];
    if (p.param.empty()) EXPECT_TRUE(e["param"].is_null()) << p.name << ": " << e["param"];
    else EXPECT_EQ(e["param"], p.param) << p.name;
    expect_still_serving(p.name);
  }

  void expect_still_serving(const std::string& after) {
    TestResponse ok = post("/v1/completions", {{"prompt", "ab"}, {"max_tokens", 1}});
    EXPECT_EQ(ok.status, 200) << "after " << after << ": " << ok.body << ok.error;
  }
};

std::string chat_with_content(const std::string& content_json) {
  return R"({"messages": [{"role": "user", "content": )" + content_json + R"(}], "max_tokens": 2})";
}

TEST_F(HostileInputTest, NumbersOutOfRangeAndWrongTypesNameTheField) {
  const std::vector<Probe> probes = {
      {"temperature 1e400", R"({"prompt": "a", "temperature": 1e400})", 400, "", "1e400"},
      {"temperature 1e30", R"({"prompt": "a", "temperature": 1e30})", 400, "temperature", "'temperature' must be in"},
      {"max_tokens 1e30", R"({"prompt": "a", "max_tokens": 1e30})", 400, "max_tokens",
       "'max_tokens' must be an integer"},
      {"max_tokens 2^63", R"({"prompt": "a", "max_tokens": 9223372036854775808})", 400, "max_tokens", "out of range"},
      {"max_tokens 2^40", R"({"prompt": "a", "max_tokens": 1099511627776})", 400, "max_tokens", "max_tokens"},
      {"n 1e30", R"({"prompt": "a", "n": 1e30})", 400, "n", "'n' must be an integer"},
      {"n huge", R"({"prompt": "a", "n": 18446744073709551615})", 400, "n", "out of range"},
      {"top_k 1e30", R"({"prompt": "a", "top_k": 1e30})", 400, "top_k", "'top_k' must be an integer"},
      {"top_k 2^40", R"({"prompt": "a", "top_k": 1099511627776})", 400, "top_k", "top_k"},
      {"seed 1e30", R"({"prompt": "a", "seed": 1e30})", 400, "seed", "'seed' must be an integer"},
      {"seed 2^64-1", R"({"prompt": "a", "seed": 18446744073709551615})", 400, "seed", "out of range"},
      {"logprobs 1e30", R"({"prompt": "a", "logprobs": 1e30})", 400, "logprobs", "'logprobs' must be an integer"},
      {"logprobs 2^40", R"({"prompt": "a", "logprobs": 1099511627776})", 400, "logprobs", "'logprobs' must be in"},
      {"min_tokens -1", R"({"prompt": "a", "min_tokens": -1})", 400, "min_tokens", "min_tokens"},
      {"token id 1e30", R"({"prompt": [1, 1e30]})", 400, "prompt", "integer token ids"},
      {"token id 2^32", R"({"prompt": [1, 4294967296]})", 400, "prompt", "4294967296 is out of range"},
      {"token id 2^64-1", R"({"prompt": [18446744073709551615]})", 400, "prompt", "out of range"},
      {"token id -1", R"({"prompt": [-1]})", 400, "prompt", "out of range"},
      {"stop_token_ids 1e30", R"({"prompt": "a", "stop_token_ids": [1e30]})", 400, "stop_token_ids", "integers"},
      {"stop_token_ids 2^63", R"({"prompt": "a", "stop_token_ids": [9223372036854775808]})", 400, "stop_token_ids",
       "integers"},
      {"stream 1", R"({"prompt": "a", "stream": 1})", 400, "stream", "'stream' must be a boolean"},
      {"stream_options.include_usage", R"({"prompt": "a", "stream": true, "stream_options": {"include_usage": 1}})",
       400, "stream_options", "include_usage"},
      {"kv_transfer_params list", R"({"prompt": "a", "kv_transfer_params": [1]})", 400, "kv_transfer_params",
       "must be an object"},
      {"body not an object", R"([1, 2])", 400, "", "must be a JSON object"},
      {"logit_bias 1e400", R"({"prompt": "a", "logit_bias": {"1": 1e400}})", 400, "", "1e400"},
      {"logit_bias NaN-like", R"({"prompt": "a", "logit_bias": {"1": 1e30}})", 400, "logit_bias", "[-100, 100]"},
      {"logit_bias key 1e3", R"({"prompt": "a", "logit_bias": {"1e3": 1}})", 400, "logit_bias", "'1e3'"},
      {"logit_bias key with a space", R"({"prompt": "a", "logit_bias": {" 1": 1}})", 400, "logit_bias", "token ids"},
      {"logit_bias long key", R"({"prompt": "a", "logit_bias": {")" + std::string(10000, '9') + R"(": 1}})", 400,
       "logit_bias", "9999..."},
  };
  for (const auto& p : probes) expect_refused(http_call(port_, "POST", "/v1/completions", p.body), p);
  // More tokens than one logit_bias may name.
  Json many = Json::object();
  for (int i = 0; i < 1025; ++i) many[std::to_string(i)] = 1;
  const Probe too_many{"logit_bias 1025 tokens", Json{{"prompt", "a"}, {"logit_bias", many}}.dump(), 400, "logit_bias",
                       "at most 1024"};
  expect_refused(http_call(port_, "POST", "/v1/completions", too_many.body), too_many);
  // Stop conditions: every output token is checked against each, so they are bounded.
  const Probe stops{"65 stop strings", Json{{"prompt", "a"}, {"stop", std::vector<std::string>(65, "ab")}}.dump(), 400,
                    "stop", "at most 64 strings"};
  expect_refused(http_call(port_, "POST", "/v1/completions", stops.body), stops);
  const Probe long_stop{"a 1025-byte stop string", Json{{"prompt", "a"}, {"stop", std::string(1025, 'x')}}.dump(), 400,
                        "stop", "at most 1024 bytes"};
  expect_refused(http_call(port_, "POST", "/v1/completions", long_stop.body), long_stop);
  const Probe ids{"1025 stop_token_ids", Json{{"prompt", "a"}, {"stop_token_ids", std::vector<int>(1025, 1)}}.dump(),
                  400, "stop_token_ids", "at most 1024 ids"};
  expect_refused(http_call(port_, "POST", "/v1/completions", ids.body), ids);
  // At the bounds they are taken.
  TestResponse at = post("/v1/completions", {{"prompt", "ab"},
                                             {"max_tokens", 1},
                                             {"stop", std::vector<std::string>(64, std::string(1024, 'x'))},
                                             {"stop_token_ids", std::vector<int>(1024, 1)}});
  EXPECT_EQ(at.status, 200) << at.body.substr(0, 400);
}

TEST_F(HostileInputTest, ChatContentPartsAreTypeChecked) {
  const std::vector<Probe> probes = {
      {"type 1", chat_with_content(R"([{"type": 1, "text": "x"}])"), 400, "messages",
       "messages[0].content[0].type must be the string \"text\", got 1"},
      {"type missing", chat_with_content(R"([{"text": "x"}])"), 400, "messages", "content[0].type"},
      {"type image", chat_with_content(R"([{"type": "image_url", "image_url": {}}])"), 400, "messages",
       "got \"image_url\""},
      {"text 1", chat_with_content(R"([{"type": "text", "text": 1}])"), 400, "messages",
       "messages[0].content[0].text must be a string"},
      {"part not an object", chat_with_content(R"(["x"])"), 400, "messages", "content[0] must be an object"},
      {"second part", chat_with_content(R"([{"type": "text", "text": "a"}, {"type": null}])"), 400, "messages",
       "content[1].type"},
      {"role 1", R"({"messages": [{"role": 1, "content": "x"}]})", 400, "messages", "role must be a string"},
      {"content 1", chat_with_content("1"), 400, "messages", "content must be a string or a list"},
      {"messages object", R"({"messages": {"role": "user"}})", 400, "messages", "non-empty array"},
  };
  for (const auto& p : probes) expect_refused(http_call(port_, "POST", "/v1/chat/completions", p.body), p);
  // Parts that are right still work.
  TestResponse ok = http_call(port_, "POST", "/v1/chat/completions",
                              chat_with_content(R"([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])"));
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(HostileInputTest, InvalidUtf8InBodyOrPathGetsAValidJsonError) {
  expect_refused(http_call(port_, "POST", "/v1/completions", "{\"prompt\": \"a\xff\xfe\"}"),
                 {"bad UTF-8 in a string", "", 400, "", "malformed JSON body"});
  expect_refused(http_call(port_, "POST", "/v1/completions", "{\"\xc3\": 1}"),
                 {"bad UTF-8 in a key", "", 400, "", "malformed JSON body"});
  TestResponse r = http_call(port_, "GET", "/v1/\xff\xfe\xc3");
  ASSERT_GE(r.status, 400) << r.body << r.error;
  ASSERT_LT(r.status, 500) << r.body;
  EXPECT_TRUE(r.json().is_object()) << r.body;  // serialised despite the bytes it quotes
  expect_still_serving("a path with bad UTF-8");
}

TEST_F(HostileInputTest, DeepNestingInKvTransferParamsIs400) {
  const int levels = 150000;  // 300 KB
  std::string body = R"({"prompt": "a", "kv_transfer_params": {"x": )" + std::string(levels, '[') +
                     std::string(levels, ']') + "}}";
  expect_refused(http_call(port_, "POST", "/v1/completions", body),
                 {"150,000 nested arrays", "", 400, "", "nested deeper than 64 levels"});
  // 64 levels are fine (refused later for what they are, not for depth).
  std::string ok_depth = R"({"prompt": "a", "max_tokens": 1, "metadata": )" + std::string(63, '[') +
                         std::string(63, ']') + "}";
  EXPECT_EQ(http_call(port_, "POST", "/v1/completions", ok_depth).status, 200);
}

TEST_F(HostileInputTest, FaultInTheHandlerIs500AndTheServerServesOn) {
  codec_.throw_in_encode = true;
  TestResponse r = post("/v1/completions", {{"prompt", "ab"}, {"max_tokens", 2}});
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_EQ(r.json()["error"]["type"], "internal_error") << r.body;
  expect_still_serving("a fault in encode");
  // Nothing left behind (a request ends just after its reply is written).
  ::baton::testing::wait_until([&] { return server_->service().num_active() <= 0; }, 2, 10);
  EXPECT_EQ(server_->service().num_active(), 0);
}

TEST_F(HostileInputTest, FaultWhileStreamingEndsThatStreamAndAbortsItsRequest) {
  codec_.throw_in_token_text = true;  // hit while writing logprobs
  TestResponse r = post("/v1/completions", {{"prompt", "ab"}, {"max_tokens", 50}, {"stream", true}, {"logprobs", 1}});
  ASSERT_EQ(r.status, 200) << r.body;
  std::vector<std::string> events = sse_events(r.body);
  ASSERT_GE(events.size(), 2u) << r.body;
  EXPECT_NE(events[events.size() - 2].find("internal_error"), std::string::npos) << r.body;
  EXPECT_EQ(events.back(), "[DONE]");
  ::baton::testing::wait_until([&] { return server_->service().num_active() <= 0; }, 2, 10);
  EXPECT_EQ(server_->service().num_active(), 0);
  ::baton::testing::wait_until([&] { return engine_->num_aborted() != 0; }, 2, 10);
  EXPECT_EQ(engine_->num_aborted(), 1);  // its generation stopped
  expect_still_serving("a fault while streaming");

  codec_.throw_in_token_text = true;  // the same, not streamed
  TestResponse whole = post("/v1/completions", {{"prompt", "ab"}, {"max_tokens", 5}, {"logprobs", 1}});
  EXPECT_EQ(whole.status, 500) << whole.body;
  expect_still_serving("a fault in a whole response");
}

}  // namespace
}  // namespace baton::testing
