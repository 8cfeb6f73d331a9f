// The OpenAI API over a fake engine: response shapes, SSE framing, logprobs,
// kv_transfer_params pass-through, disconnect aborts, timeouts, shutdown.
#include <chrono>
#include <thread>

#include "server_fixture.h"
#include "support/wait.h"

namespace baton::testing {
namespace {

using std::chrono::milliseconds;

class ApiServerTest : public ServerFixture {
 protected:
  void SetUp() override { start_server(); }
};

TEST_F(ApiServerTest, CompletionNonStreaming) {
  TestResponse r = post("/v1/completions", {{"model", "fake-model"}, {"prompt", "hello"}, {"max_tokens", 5}});
  ASSERT_EQ(r.status, 200) << r.body << r.error;
  EXPECT_EQ(r.headers["content-type"], "application/json");
  Json j = r.json();
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["model"], "fake-model");
  EXPECT_TRUE(j["id"].get<std::string>().rfind("cmpl-", 0) == 0);
  EXPECT_TRUE(j["created"].is_number_integer());
  ASSERT_EQ(j["choices"].size(), 1u);
  EXPECT_EQ(j["choices"][0]["index"], 0);
  EXPECT_EQ(j["choices"][0]["text"], fake_text(5, 5));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(j["usage"], (Json{{"prompt_tokens", 5}, {"completion_tokens", 5}, {"total_tokens", 10}}));
  EXPECT_FALSE(j.contains("kv_transfer_params"));
}

TEST_F(ApiServerTest, HealthAnswers503NamingTheErrorOnceTheEngineHasStopped) {
  EXPECT_EQ(get("/health").status, 200);
  engine_->set_health(deadline_exceeded("tensor parallel rank(s) 1 of 2 hung"));
  TestResponse r = get("/health");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body.find("rank(s) 1 of 2 hung"), std::string::npos) << r.body;
}

TEST_F(ApiServerTest, CompletionFromTokenIdsAndSamplingParamsReachTheEngine) {
  Json body = {{"prompt", {1, 2, 3}},
               {"max_tokens", 4},
               {"temperature", 0.5},
               {"top_p", 0.9},
               {"top_k", 7},
               {"min_p", 0.1},
               {"seed", 42},
               {"presence_penalty", 0.5},
               {"frequency_penalty", -0.5},
               {"repetition_penalty", 1.2},
               {"min_tokens", 2},
               {"ignore_eos", true},
               {"stop", {"xyz", "q"}},
               {"stop_token_ids", {99}},
               {"logit_bias", {{"7", 2.5}, {"3", -100}}},
               {"skip_special_tokens", false},
               {"include_stop_str_in_output", true},
               {"priority", 0},
               {"response_format", {{"type", "text"}}},
               {"some_unknown_field", 1}};
  TestResponse r = post("/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["choices"][0]["text"], fake_text(3, 4));
  GenerationRequest g = engine_->last_request();
  EXPECT_EQ(g.prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(g.max_tokens, 4);
  EXPECT_FLOAT_EQ(g.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(g.sampling.top_p, 0.9f);
  EXPECT_EQ(g.sampling.top_k, 7);
  EXPECT_FLOAT_EQ(g.sampling.min_p, 0.1f);
  EXPECT_EQ(g.sampling.seed, 42u);
  EXPECT_FLOAT_EQ(g.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(g.sampling.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(g.sampling.repetition_penalty, 1.2f);
  EXPECT_EQ(g.min_tokens, 2);
  EXPECT_TRUE(g.ignore_eos);
  EXPECT_EQ(g.stop, (std::vector<std::string>{"xyz", "q"}));
  EXPECT_EQ(g.stop_token_ids, (std::vector<int32_t>{99}));
  EXPECT_EQ(g.sampling.num_logprobs, -1);
  // Ascending by id, whatever the body's order.
  EXPECT_EQ(g.sampling.logit_bias, (std::vector<std::pair<int32_t, float>>{{3, -100.0f}, {7, 2.5f}}));
  EXPECT_FALSE(g.skip_special_tokens);
  EXPECT_TRUE(g.include_stop_str_in_output);
}

TEST_F(ApiServerTest, StopTokenFinishesWithStop) {
  // Prompt "ab" (2 tokens): outputs c, d, e...; stopping on 'e' gives "cde".
  TestResponse r = post("/v1/completions", {{"prompt", "ab"}, {"max_tokens", 10}, {"stop_token_ids", {'e'}}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["choices"][0]["text"], "cde");
  EXPECT_EQ(r.json()["choices"][0]["finish_reason"], "stop");
}

TEST_F(ApiServerTest, ChatNonStreamingUsesTheTemplate) {
  Json body = {{"model", "fake-model"},
               {"messages",
                {{{"role", "system"}, {"content", "be brief"}},
                 {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "hi"}}}}}}},
               {"max_completion_tokens", 3}};
  TestResponse r = post("/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  Json j = r.json();
  std::string prompt = "<|system|>be brief\n<|user|>hi\n<|assistant|>";
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_TRUE(j["id"].get<std::string>().rfind("chatcmpl-", 0) == 0);
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], fake_text(prompt.size(), 3));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["prompt_tokens"], prompt.size());
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
}

TEST_F(ApiServerTest, ChatWithoutMaxTokensFillsTheContext) {
  TestResponse r = post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "x"}}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  std::string prompt = "<|user|>x\n<|assistant|>";
  EXPECT_EQ(r.json()["usage"]["completion_tokens"], 512 - static_cast<int>(prompt.size()));
}

TEST_F(ApiServerTest, CompletionStreamingFramingAndUsage) {
  Json body = {{"prompt", "abc"}, {"max_tokens", 6}, {"stream", true}, {"stream_options", {{"include_usage", true}}}};
  TestResponse r = post("/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["content-type"], "text/event-stream");
  EXPECT_EQ(r.headers["transfer-encoding"], "chunked");
  std::string framing;
  auto events = sse_events(r.body, &framing);
  EXPECT_EQ(framing, "");
  ASSERT_EQ(events.size(), 6u + 1 + 1);  // 6 tokens, usage, [DONE]
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  for (int i = 0; i < 6; ++i) {
    Json c = Json::parse(events[i]);
    EXPECT_EQ(c["object"], "text_completion");
    EXPECT_TRUE(c.contains("usage") && c["usage"].is_null());
    text += c["choices"][0]["text"].get<std::string>();
    EXPECT_EQ(c["choices"][0]["finish_reason"], i == 5 ? Json("length") : Json(nullptr));
  }
  EXPECT_EQ(text, fake_text(3, 6));
  Json usage = Json::parse(events[6]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"], (Json{{"prompt_tokens", 3}, {"completion_tokens", 6}, {"total_tokens", 9}}));
}

TEST_F(ApiServerTest, ChatStreamingRoleThenDeltasThenFinish) {
  Json body = {{"messages", {{{"role", "user"}, {"content", "hey"}}}}, {"max_tokens", 4}, {"stream", true}};
  TestResponse r = post("/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  auto events = sse_events(r.body);
  ASSERT_EQ(events.size(), 1u + 4 + 1 + 1);  // role, 4 deltas, finish, [DONE]
  Json first = Json::parse(events[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], (Json{{"role", "assistant"}, {"content", ""}}));
  EXPECT_FALSE(first.contains("usage"));
  std::string text;
  for (int i = 1; i <= 4; ++i) {
    Json c = Json::parse(events[i]);
    text += c["choices"][0]["delta"]["content"].get<std::string>();
    EXPECT_TRUE(c["choices"][0]["finish_reason"].is_null());
  }
  std::string prompt = "<|user|>hey\n<|assistant|>";
  EXPECT_EQ(text, fake_text(prompt.size(), 4));
  Json last = Json::parse(events[5]);
  EXPECT_EQ(last["choices"][0]["delta"], Json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(events[6], "[DONE]");
}

TEST_F(ApiServerTest, LogprobsShapes) {
  TestResponse r = post("/v1/completions", {{"prompt", "ab"}, {"max_tokens", 2}, {"logprobs", 2}});
  ASSERT_EQ(r.status, 200) << r.body;
  Json lp = r.json()["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], (Json{"c", "d"}));
  EXPECT_EQ(lp["token_logprobs"], (Json{-0.5, -0.5}));
  EXPECT_EQ(lp["text_offset"], (Json{0, 1}));
  EXPECT_EQ(lp["top_logprobs"][0], (Json{{"c", -0.5}, {"d", -1.5}}));
  EXPECT_EQ(engine_->last_request().sampling.num_logprobs, 2);

  r = post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "x"}}}},
                                    {"max_tokens", 1},
                                    {"logprobs", true},
                                    {"top_logprobs", 1}});
  ASSERT_EQ(r.status, 200) << r.body;
  Json content = r.json()["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 1u);
  EXPECT_EQ(content[0]["logprob"], -0.5);
  EXPECT_EQ(content[0]["bytes"].size(), 1u);
  ASSERT_EQ(content[0]["top_logprobs"].size(), 1u);
  EXPECT_EQ(content[0]["top_logprobs"][0]["token"], content[0]["token"]);
}

TEST_F(ApiServerTest, KvTransferParamsPassThrough) {
  Json kv = {{"do_remote_decode", true}};
  TestResponse r = post("/v1/completions", {{"prompt", "ab"}, {"max_tokens", 1}, {"kv_transfer_params", kv}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(engine_->last_request().kv_transfer_params, kv);
  EXPECT_EQ(r.json()["kv_transfer_params"], (Json{{"echo", kv}}));
}

TEST_F(ApiServerTest, ModelsHealthMetrics) {
  TestResponse r = get("/v1/models");
  ASSERT_EQ(r.status, 200);
  Json j = r.json();
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["id"], "fake-model");
  EXPECT_EQ(j["data"][0]["object"], "model");
  EXPECT_EQ(j["data"][0]["max_model_len"], 512);
  EXPECT_EQ(j["data"][0]["vocab_size"], codec_.vocab_size());  // for clients that send token ids
  EXPECT_EQ(get("/health").status, 200);
  ASSERT_EQ(post("/v1/completions", {{"prompt", "abcd"}, {"max_tokens", 3}}).status, 200);
  r = get("/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.headers["content-type"].find("text/plain"), std::string::npos);
  for (const char* name :
       {"baton:num_requests_running", "baton:num_requests_waiting", "baton:kv_cache_usage_perc",
        "baton:prefix_cache_queries_total", "baton:prefix_cache_hits_total", "baton:num_preemptions_total",
        "baton:prompt_tokens_total", "baton:generation_tokens_total", "baton:request_success_total",
        "baton:time_to_first_token_seconds_bucket", "baton:time_per_output_token_seconds_count",
        "baton:inter_token_latency_seconds_count", "baton:e2e_request_latency_seconds_sum",
        "baton:request_queue_time_seconds_count", "baton:request_prefill_time_seconds_count",
        "baton:request_decode_time_seconds_count", "baton:num_kv_blocks_free", "baton:num_kv_blocks_total"}) {
    EXPECT_NE(r.body.find(name), std::string::npos) << name;
  }
  EXPECT_EQ(metric("baton:request_success_total{model_name=\"fake-model\",finished_reason=\"length\"}"), 1);
  EXPECT_EQ(metric("baton:e2e_request_latency_seconds_count{model_name=\"fake-model\"}"), 1);
  EXPECT_EQ(metric("baton:inter_token_latency_seconds_count{model_name=\"fake-model\"}"), 2);
  EXPECT_EQ(metric("baton:generation_tokens_total{model_name=\"fake-model\"}"), 3);
  EXPECT_EQ(metric("baton:prompt_tokens_total{model_name=\"fake-model\"}"), 4);
}

TEST_F(ApiServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  boost::asio::io_context ioc;
  auto s = connect_to(ioc, port_);
  for (int i = 0; i < 3; ++i) {
    std::string body = Json{{"prompt", "abc"}, {"max_tokens", 2}, {"stream", i == 1}}.dump();
    std::string req = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body;
    boost::asio::write(s, boost::asio::buffer(req));
    boost::beast::flat_buffer buf;
    namespace http = boost::beast::http;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_NE(res.body().find(i == 1 ? "[DONE]" : "text_completion"), std::string::npos);
    EXPECT_TRUE(res.keep_alive());
  }
}

TEST_F(ApiServerTest, ClientDisconnectAbortsTheRequestAndFreesItsBlocks) {
  server_->shutdown();
  FakeEngine::Options slow;
  slow.token_delay_s = 0.01;
  start_server(slow, default_options());
  boost::asio::io_context ioc;
  auto s = connect_to(ioc, port_);
  std::string body = Json{{"prompt", "abc"}, {"max_tokens", 400}, {"stream", true}}.dump();
  boost::asio::write(s, boost::asio::buffer(build_request("POST", "/v1/completions", body)));
  std::string raw = read_events(s, 3);
  ASSERT_NE(raw.find("data: "), std::string::npos) << raw;
  EXPECT_EQ(engine_->stats().num_running, 1);
  s.close();
  // The engine counts the abort before the server's handler records it in the
  // metrics and lets the request go: wait for all three.
  const std::string aborted_metric = "baton:request_success_total{model_name=\"fake-model\",finished_reason=\"abort\"}";
  ::baton::testing::wait_until(
      [&] {
        return engine_->num_aborted() != 0 && metric(aborted_metric) == 1 && server_->service().num_active() == 0;
      },
      5, 20);
  EXPECT_EQ(engine_->num_aborted(), 1);
  EngineStats st = engine_->stats();
  EXPECT_EQ(st.num_running, 0);
  EXPECT_EQ(st.num_kv_blocks_free, st.num_kv_blocks_total);
  EXPECT_EQ(metric(aborted_metric), 1);
  EXPECT_EQ(server_->service().num_active(), 0);
}

TEST_F(ApiServerTest, NonStreamingClientDisconnectAlsoAborts) {
  server_->shutdown();
  FakeEngine::Options slow;
  slow.token_delay_s = 0.01;
  start_server(slow, default_options());
  {
    boost::asio::io_context ioc;
    auto s = connect_to(ioc, port_);
    std::string body = Json{{"prompt", "abc"}, {"max_tokens", 400}}.dump();
    boost::asio::write(s, boost::asio::buffer(build_request("POST", "/v1/completions", body)));
    // Closed once the request runs (not before the server has read it).
    ASSERT_TRUE(::baton::testing::wait_until([&] { return engine_->stats().num_running >= 1; }, 10.0, 2));
  }  // closed
  ::baton::testing::wait_until([&] { return engine_->num_aborted() != 0; }, 5, 5);
  EXPECT_EQ(engine_->num_aborted(), 1);
}

TEST_F(ApiServerTest, SlowHeadersTimeOutAndHoldNothing) {
  boost::asio::io_context ioc;
  auto s = connect_to(ioc, port_);
  boost::asio::write(s, boost::asio::buffer(std::string("POST /v1/completions HTTP/1.1\r\nHost: x\r\n")));
  auto t0 = std::chrono::steady_clock::now();
  char buf[256];
  boost::system::error_code ec;
  s.read_some(boost::asio::buffer(buf), ec);  // the server closes after the 0.5 s header timeout
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(ec) << "expected the server to close the connection";
  EXPECT_LT(waited, 5.0);
  // A connection that sends nothing at all is closed too.
  auto idle = connect_to(ioc, port_);
  idle.read_some(boost::asio::buffer(buf), ec);
  EXPECT_TRUE(ec);
  EXPECT_EQ(get("/health").status, 200);
}

TEST_F(ApiServerTest, ShutdownLetsRunningRequestsFinishWithinGrace) {
  engine_->set_paused(true);
  TestResponse result;
  std::thread client([&] {
    result = post("/v1/completions", {{"prompt", "abc"}, {"max_tokens", 40}, {"stream", true}});
  });
  ::baton::testing::wait_until([&] { return engine_->stats().num_running != 0; }, 10, 2);
  ASSERT_EQ(engine_->stats().num_running, 1);
  std::thread stopper([&] { server_->shutdown(); });  // grace 5 s
  // No longer accepting (as soon as the shutdown has begun).
  EXPECT_TRUE(::baton::testing::wait_until([&] { return http_call(port_, "GET", "/health").error != ""; }, 5.0));
  engine_->set_paused(false);
  stopper.join();
  client.join();
  ASSERT_EQ(result.status, 200) << result.error;
  auto events = sse_events(result.body);
  ASSERT_EQ(events.size(), 41u);
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(Json::parse(events[events.size() - 2])["choices"][0]["finish_reason"], "length");
}

TEST_F(ApiServerTest, ShutdownAbortsWhatOutlivesTheGrace) {
  server_->shutdown();
  ApiServerOptions o = default_options();
  o.shutdown_grace_s = 0.2;
  start_server(FakeEngine::Options{}, o);
  engine_->set_paused(true);  // the request never finishes by itself
  TestResponse result;
  std::thread client([&] {
    result = post("/v1/completions", {{"prompt", "abc"}, {"max_tokens", 450}, {"stream", true}});
  });
  ::baton::testing::wait_until([&] { return engine_->stats().num_running != 0; }, 10, 2);
  ASSERT_EQ(engine_->stats().num_running, 1);
  auto t0 = std::chrono::steady_clock::now();
  server_->shutdown();
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  client.join();
  EXPECT_LT(took, 3.0);
  ASSERT_EQ(result.status, 200) << result.error;
  auto events = sse_events(result.body);
  ASSERT_EQ(events.size(), 2u);  // the final chunk, then [DONE]
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(Json::parse(events[0])["choices"][0]["finish_reason"], "abort");
  EXPECT_EQ(engine_->num_aborted(), 1);
}

}  // namespace
}  // namespace baton::testing

namespace baton::testing {
namespace {

TEST_F(ApiServerTest, ExpectContinueGetsAnInterimResponse) {
  boost::asio::io_context ioc;
  auto s = connect_to(ioc, port_);
  std::string body = Json{{"prompt", std::string(300, 'x')}, {"max_tokens", 2}}.dump();
  std::string head =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n";
  boost::asio::write(s, boost::asio::buffer(head));
  char buf[64];
  size_t n = s.read_some(boost::asio::buffer(buf));  // before any body byte is sent
  EXPECT_EQ(std::string(buf, n), "HTTP/1.1 100 Continue\r\n\r\n");
  boost::asio::write(s, boost::asio::buffer(body));
  std::string rest = read_events(s, 1 << 30);
  EXPECT_EQ(rest.rfind("HTTP/1.1 200 OK", 0), 0u) << rest;
  // A body over the limit is refused without the interim response.
  auto s2 = connect_to(ioc, port_);
  std::string big =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10000000\r\n\r\n";
  boost::asio::write(s2, boost::asio::buffer(big));
  std::string reply = read_events(s2, 1 << 30);
  EXPECT_EQ(reply.rfind("HTTP/1.1 413", 0), 0u) << reply;
}

}  // namespace
}  // namespace baton::testing

namespace baton::testing {
namespace {

TEST_F(ApiServerTest, IdleKeepAliveConnectionsAreClosed) {
  server_->shutdown();
  ApiServerOptions o = default_options();
  o.http.limits.idle_timeout_s = 0.3;
  start_server(FakeEngine::Options{}, o);
  boost::asio::io_context ioc;
  auto s = connect_to(ioc, port_);
  std::string req = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";  // keep-alive
  boost::asio::write(s, boost::asio::buffer(req));
  boost::beast::flat_buffer buf;
  namespace http = boost::beast::http;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_TRUE(res.keep_alive());
  auto t0 = std::chrono::steady_clock::now();
  char byte;
  boost::system::error_code ec;
  s.read_some(boost::asio::buffer(&byte, 1), ec);  // the server closes it after 0.3 s idle
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_TRUE(ec);
  EXPECT_GT(waited, 0.2);
  EXPECT_LT(waited, 5.0);
}

}  // namespace
}  // namespace baton::testing

namespace baton::testing {
namespace {

// A client that stops reading (half-open, or just stuck): once the socket
// buffers are full, the write times out, the request is aborted and its
// blocks are freed. The engine steps every 0.1 ms and each event carries 20
// top logprobs (~0.5 KB), so the buffers fill within a second while the
// server keeps up with the events: with steps of 0 s the fake engine posted
// outputs faster than the I/O thread ran them, and the write's timeout
// waited behind that backlog (1 run in 6 went past the test's 60 s wait on a 2-core machine).
TEST_F(ApiServerTest, StalledReaderTimesOutAndIsAborted) {
  server_->shutdown();
  FakeEngine::Options e;
  e.token_delay_s = 1e-4;
  e.max_model_len = 10'000'000;
  ApiServerOptions o = default_options();
  o.http.limits.write_timeout_s = 0.5;
  start_server(e, o);
  boost::asio::io_context ioc;
  auto s = connect_to(ioc, port_);
  int small = 4096;
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  std::string body = Json{{"prompt", "abc"}, {"max_tokens", 5'000'000}, {"stream", true}, {"logprobs", 20}}.dump();
  boost::asio::write(s, boost::asio::buffer(build_request("POST", "/v1/completions", body)));
  // Never read. The server must give up on its own.
  ::baton::testing::wait_until([&] { return engine_->num_aborted() != 0; }, 60, 20);
  EXPECT_EQ(engine_->num_aborted(), 1);
  EngineStats st = engine_->stats();
  EXPECT_EQ(st.num_running, 0);
  EXPECT_EQ(st.num_kv_blocks_free, st.num_kv_blocks_total);
}

// Events can come faster than a stalled write's timeout is noticed (the timer
// waits on the strand behind them): a response queued past max_pending_bytes
// is abandoned at once, so neither memory nor the request's life depends on it.
TEST_F(ApiServerTest, AClientFarBehindItsStreamIsClosedAndItsRequestAborted) {
  server_->shutdown();
  FakeEngine::Options e;
  e.token_delay_s = 0;
  e.max_model_len = 10'000'000;
  ApiServerOptions o = default_options();
  o.http.limits.write_timeout_s = 600;  // out of the picture
  o.http.limits.max_pending_bytes = 256 << 10;
  start_server(e, o);
  boost::asio::io_context ioc;
  auto s = connect_to(ioc, port_);
  int small = 4096;
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  std::string body = Json{{"prompt", "abc"}, {"max_tokens", 5'000'000}, {"stream", true}}.dump();
  boost::asio::write(s, boost::asio::buffer(build_request("POST", "/v1/completions", body)));
  auto t0 = std::chrono::steady_clock::now();
  ::baton::testing::wait_until([&] { return engine_->num_aborted() != 0; }, 60.0, 20);
  EXPECT_EQ(engine_->num_aborted(), 1);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30.0);
  EngineStats st = engine_->stats();
  EXPECT_EQ(st.num_running, 0);
  EXPECT_EQ(st.num_kv_blocks_free, st.num_kv_blocks_total);
}

}  // namespace
}  // namespace baton::testing
