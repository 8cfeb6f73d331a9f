// Every error case answers with its status code and an OpenAI error body, and
// the server keeps serving afterwards.
#include <thread>

#include "server_fixture.h"
#include "support/wait.h"

namespace baton::testing {
namespace {

struct ErrorCase {
  std::string name;
  std::string path;
  std::string body;  // raw
  int status;
  std::string param;         // expected error.param ("" = null)
  std::string message_part;  // expected inside error.message
};

Json user_messages() { return Json::array({{{"role", "user"}, {"content", "hi"}}}); }
std::string completion(Json extra) {
  Json b = {{"model", "fake-model"}, {"prompt", "hello"}, {"max_tokens", 4}};
  if (extra.is_object()) b.update(extra);
  return b.dump();
}
std::string chat(Json extra) {
  Json b = {{"model", "fake-model"}, {"messages", user_messages()}, {"max_tokens", 4}};
  if (extra.is_object()) b.update(extra);
  return b.dump();
}

class ApiErrorsTest : public ServerFixture {
 protected:
  void SetUp() override {
    ApiServerOptions o = default_options();
    o.service.api_key = "";
    start_server(FakeEngine::Options{}, o);
  }

  void expect_error(const TestResponse& r, int status, const std::string& param, const std::string& message_part,
                    const std::string& what) {
    ASSERT_EQ(r.status, status) << what << ": " << r.body << r.error;
    EXPECT_EQ(r.headers.at("content-type"), "application/json") << what;
    Json j = r.json();
    ASSERT_TRUE(j.is_object() && j.contains("error")) << what << ": " << r.body;
    const Json& e = j["error"];
    ASSERT_TRUE(e["message"].is_string()) << what;
    EXPECT_NE(e["message"].get<std::string>().find(message_part), std::string::npos)
        << what << ": message was " << e["message"];
    EXPECT_TRUE(e["type"].is_string()) << what;
    EXPECT_TRUE(e.contains("code")) << what;
    if (param.empty()) EXPECT_TRUE(e["param"].is_null()) << what << ": " << e["param"];
    else EXPECT_EQ(e["param"], param) << what;
    // The server still serves.
    TestResponse ok = post("/v1/completions", {{"prompt", "ab"}, {"max_tokens", 1}});
    EXPECT_EQ(ok.status, 200) << "after " << what << ": " << ok.body << ok.error;
  }
};

TEST_F(ApiErrorsTest, BadRequests) {
  const std::vector<ErrorCase> cases = {
      {"malformed JSON", "/v1/completions", "{\"prompt\": \"x\",", 400, "", "malformed"},
      {"body not an object", "/v1/completions", "[1,2]", 400, "", "JSON object"},
      {"missing prompt", "/v1/completions", R"({"max_tokens": 3})", 400, "prompt", "required"},
      {"empty prompt", "/v1/completions", completion({{"prompt", ""}}), 400, "prompt", "empty"},
      {"prompt wrong type", "/v1/completions", completion({{"prompt", 5}}), 400, "prompt", "string"},
      {"batched prompts", "/v1/completions", completion({{"prompt", {"a", "b"}}}), 400, "prompt", "one prompt"},
      {"token id outside vocab", "/v1/completions", completion({{"prompt", {1, 5000}}}), 400, "prompt", "vocabulary"},
      {"negative token id", "/v1/completions", completion({{"prompt", {-1}}}), 400, "prompt", "out of range"},
      {"temperature wrong type", "/v1/completions", completion({{"temperature", "hot"}}), 400, "temperature", "number"},
      {"temperature < 0", "/v1/completions", completion({{"temperature", -0.1}}), 400, "temperature", "[0, 2]"},
      {"temperature > 2", "/v1/completions", completion({{"temperature", 2.5}}), 400, "temperature", "[0, 2]"},
      {"top_p 0", "/v1/completions", completion({{"top_p", 0}}), 400, "top_p", "(0, 1]"},
      {"top_p > 1", "/v1/completions", completion({{"top_p", 1.5}}), 400, "top_p", "(0, 1]"},
      {"top_k < -1", "/v1/completions", completion({{"top_k", -2}}), 400, "top_k", "top_k"},
      {"min_p > 1", "/v1/completions", completion({{"min_p", 1.5}}), 400, "min_p", "[0, 1]"},
      {"presence_penalty", "/v1/completions", completion({{"presence_penalty", 3}}), 400, "presence_penalty", "[-2"},
      {"frequency_penalty", "/v1/completions", completion({{"frequency_penalty", -3}}), 400, "frequency_penalty",
       "[-2"},
      {"repetition_penalty 0", "/v1/completions", completion({{"repetition_penalty", 0}}), 400, "repetition_penalty",
       "(0, 2]"},
      {"max_tokens 0", "/v1/completions", completion({{"max_tokens", 0}}), 400, "max_tokens", "at least 1"},
      {"max_tokens fractional", "/v1/completions", completion({{"max_tokens", 1.5}}), 400, "max_tokens", "integer"},
      {"max_tokens string", "/v1/completions", completion({{"max_tokens", "7"}}), 400, "max_tokens", "integer"},
      {"min_tokens > max_tokens", "/v1/completions", completion({{"min_tokens", 9}}), 400, "min_tokens", "exceed"},
      {"n=0", "/v1/completions", completion({{"n", 0}}), 400, "n", "[1, 128]"},
      {"n=129", "/v1/completions", completion({{"n", 129}}), 400, "n", "got 129"},
      {"best_of", "/v1/completions", completion({{"best_of", 3}}), 400, "best_of", "best_of"},
      {"echo", "/v1/completions", completion({{"echo", true}}), 400, "echo", "not supported"},
      {"suffix", "/v1/completions", completion({{"suffix", "x"}}), 400, "suffix", "not supported"},
      {"stream wrong type", "/v1/completions", completion({{"stream", "yes"}}), 400, "stream", "boolean"},
      {"stream_options without stream", "/v1/completions", completion({{"stream_options", {{"include_usage", true}}}}),
       400, "stream_options", "stream"},
      {"stop wrong type", "/v1/completions", completion({{"stop", {1, 2}}}), 400, "stop", "strings"},
      {"logprobs bool on completions", "/v1/completions", completion({{"logprobs", true}}), 400, "logprobs", "integer"},
      {"logprobs too many", "/v1/completions", completion({{"logprobs", 50}}), 400, "logprobs", "[0, 20]"},
      {"seed wrong type", "/v1/completions", completion({{"seed", "abc"}}), 400, "seed", "integer"},
      {"kv_transfer_params not an object", "/v1/completions", completion({{"kv_transfer_params", 3}}), 400,
       "kv_transfer_params", "object"},
      {"logit_bias not an object", "/v1/completions", completion({{"logit_bias", {1, 2}}}), 400, "logit_bias",
       "object"},
      {"logit_bias key not an id", "/v1/completions", completion({{"logit_bias", {{"abc", 1}}}}), 400, "logit_bias",
       "'abc'"},
      {"logit_bias negative key", "/v1/completions", completion({{"logit_bias", {{"-1", 1}}}}), 400, "logit_bias",
       "token ids"},
      {"logit_bias key past int32", "/v1/completions", completion({{"logit_bias", {{"2147483648", 1}}}}), 400,
       "logit_bias", "token ids"},
      {"logit_bias value > 100", "/v1/completions", completion({{"logit_bias", {{"5", 101}}}}), 400, "logit_bias",
       "[-100, 100]"},
      {"logit_bias value a string", "/v1/completions", completion({{"logit_bias", {{"5", "1"}}}}), 400, "logit_bias",
       "numbers"},
      {"logit_bias token twice", "/v1/completions", completion({{"logit_bias", {{"5", 1}, {"05", 2}}}}), 400,
       "logit_bias", "twice"},
      {"logit_bias outside vocab", "/v1/completions", completion({{"logit_bias", {{"5000", 1}}}}), 400, "logit_bias",
       "vocabulary"},
      {"response_format json_object", "/v1/chat/completions", chat({{"response_format", {{"type", "json_object"}}}}),
       400, "response_format", "guided decoding"},
      {"response_format json_schema on completions", "/v1/completions",
       completion({{"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "x"}}}}}}), 400,
       "response_format", "guided decoding"},
      {"response_format not an object", "/v1/chat/completions", chat({{"response_format", "json"}}), 400,
       "response_format", "object"},
      {"guided_json", "/v1/chat/completions", chat({{"guided_json", {{"type", "object"}}}}), 400, "guided_json",
       "not supported"},
      {"guided_choice", "/v1/completions", completion({{"guided_choice", {"a", "b"}}}), 400, "guided_choice",
       "not supported"},
      {"priority 1", "/v1/completions", completion({{"priority", 1}}), 400, "priority", "priority scheduling"},
      {"skip_special_tokens wrong type", "/v1/completions", completion({{"skip_special_tokens", "no"}}), 400,
       "skip_special_tokens", "boolean"},
      {"include_stop_str_in_output wrong type", "/v1/completions", completion({{"include_stop_str_in_output", 1}}), 400,
       "include_stop_str_in_output", "boolean"},
      {"context exceeded", "/v1/completions", completion({{"max_tokens", 600}}), 400, "prompt",
       "maximum context length is 512"},
      {"prompt alone exceeds context", "/v1/completions", completion({{"prompt", std::string(600, 'x')}}), 400,
       "prompt", "maximum context length"},
      {"missing messages", "/v1/chat/completions", R"({"max_tokens": 3})", 400, "messages", "required"},
      {"empty messages", "/v1/chat/completions", chat({{"messages", Json::array()}}), 400, "messages", "non-empty"},
      {"bad role", "/v1/chat/completions", chat({{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}), 400,
       "messages", "wizard"},
      {"content wrong type", "/v1/chat/completions", chat({{"messages", {{{"role", "user"}, {"content", 7}}}}}), 400,
       "messages", "content"},
      {"top_logprobs without logprobs", "/v1/chat/completions", chat({{"top_logprobs", 3}}), 400, "top_logprobs",
       "logprobs"},
      {"logprobs int on chat", "/v1/chat/completions", chat({{"logprobs", 3}}), 400, "logprobs", "boolean"},
      {"max_completion_tokens 0", "/v1/chat/completions", chat({{"max_completion_tokens", 0}}), 400,
       "max_completion_tokens", "at least 1"},
      {"chat context exceeded", "/v1/chat/completions", chat({{"max_tokens", 100000}}), 400, "messages",
       "maximum context length"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    expect_error(http_call(port_, "POST", c.path, c.body), c.status, c.param, c.message_part, c.name);
  }
  EXPECT_EQ(engine_->num_submitted(), static_cast<int>(cases.size()));  // only the follow-up requests ran
}

TEST_F(ApiErrorsTest, UnknownModelRouteAndMethod) {
  TestResponse r = http_call(port_, "POST", "/v1/completions", completion({{"model", "gpt-9"}}));
  expect_error(r, 404, "model", "gpt-9", "unknown model");
  EXPECT_EQ(r.json()["error"]["code"], "model_not_found");
  expect_error(http_call(port_, "GET", "/v1/nothing"), 404, "", "no route", "unknown route");
  expect_error(http_call(port_, "POST", "/health", "{}"), 405, "", "not allowed", "POST /health");
  r = http_call(port_, "GET", "/v1/completions");
  expect_error(r, 405, "", "not allowed", "GET /v1/completions");
  EXPECT_EQ(r.headers["allow"], "POST");
}

TEST_F(ApiErrorsTest, BodyOverTheLimitIs413) {
  std::string big = completion({{"prompt", std::string(100 * 1024, 'x')}});
  expect_error(http_call(port_, "POST", "/v1/completions", big), 413, "", "exceeds the limit", "big body");
}

TEST_F(ApiErrorsTest, MalformedHttpIs400) {
  TestResponse r = send_raw(port_, "GARBAGE\r\n\r\n");
  EXPECT_EQ(r.status, 400) << r.body << r.error;
  EXPECT_EQ(get("/health").status, 200);
}

TEST_F(ApiErrorsTest, ApiKey) {
  server_->shutdown();
  ApiServerOptions o = default_options();
  o.service.api_key = "sekret";
  start_server(FakeEngine::Options{}, o);
  std::string body = completion({});
  TestResponse r = http_call(port_, "POST", "/v1/completions", body);
  ASSERT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(r.json()["error"]["type"], "authentication_error");
  EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("missing"), std::string::npos);
  r = http_call(port_, "POST", "/v1/completions", body, {"Authorization: Bearer wrong"});
  ASSERT_EQ(r.status, 401) << r.body;
  EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("incorrect"), std::string::npos);
  EXPECT_EQ(http_call(port_, "GET", "/v1/models").status, 401);
  EXPECT_EQ(http_call(port_, "GET", "/health").status, 200);  // not under /v1
  r = http_call(port_, "POST", "/v1/completions", body, {"Authorization: Bearer sekret"});
  EXPECT_EQ(r.status, 200) << r.body;
}

// Waits (up to 10 s) for cond.
template <typename Cond>
bool eventually(Cond cond) {
  return ::baton::testing::wait_until(cond, 10.0, 1);
}

TEST_F(ApiErrorsTest, FullWaitingQueueIs503WithRetryAfter) {
  server_->shutdown();
  FakeEngine::Options e;
  e.max_running = 1;
  ApiServerOptions o = default_options();
  o.service.max_waiting_requests = 2;
  start_server(e, o);
  engine_->set_paused(true);  // one running and two waiting requests fill the queue
  std::vector<std::thread> clients;
  std::vector<TestResponse> results(3);
  for (int i = 0; i < 3; ++i) {  // one at a time, so that the first is admitted before the others
    clients.emplace_back([&, i] { results[i] = post("/v1/completions", {{"prompt", "ab"}, {"max_tokens", 3}}); });
    EXPECT_TRUE(eventually([&] {
      EngineStats st = engine_->stats();
      return st.num_running == 1 && st.num_waiting == i;
    }));
  }
  TestResponse r = post("/v1/completions", {{"prompt", "ab"}, {"max_tokens", 3}});
  engine_->set_paused(false);
  ASSERT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("waiting"), std::string::npos);
  for (auto& t : clients) t.join();
  for (auto& res : results) EXPECT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(post("/v1/completions", {{"prompt", "ab"}, {"max_tokens", 1}}).status, 200);
}

TEST_F(ApiErrorsTest, EngineQueueFullIs503Too) {
  server_->shutdown();
  FakeEngine::Options e;
  e.max_running = 1;
  e.max_waiting = 1;
  start_server(e, default_options());
  engine_->set_paused(true);
  std::vector<std::thread> clients;
  for (int i = 0; i < 2; ++i) {
    clients.emplace_back([&] { post("/v1/completions", {{"prompt", "ab"}, {"max_tokens", 3}}); });
    EXPECT_TRUE(eventually([&] {
      EngineStats st = engine_->stats();
      return st.num_running == 1 && st.num_waiting == i;
    }));
  }
  TestResponse r = post("/v1/completions", {{"prompt", "ab"}, {"max_tokens", 3}});
  engine_->set_paused(false);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.headers["retry-after"], "1");
  for (auto& t : clients) t.join();
  EXPECT_EQ(post("/v1/completions", {{"prompt", "ab"}, {"max_tokens", 1}}).status, 200);
}

}  // namespace
}  // namespace baton::testing
