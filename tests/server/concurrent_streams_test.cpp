// 1,000 concurrent streaming requests over a fake engine, half closed
// mid-stream: the rest complete with the right token counts, and nothing is
// left running or holding KV blocks.
#include <thread>

#include "server_fixture.h"
#include "stream_load_client.h"
#include "support/wait.h"

namespace baton::testing {
namespace {

class ConcurrentStreamsTest : public ServerFixture {};

TEST_F(ConcurrentStreamsTest, ThousandStreamsHalfClosedMidStream) {
  FakeEngine::Options e;
  e.token_delay_s = 0.005;
  e.num_kv_blocks = 10000;
  e.max_model_len = 4096;
  ApiServerOptions o = default_options();
  o.http.limits.header_timeout_s = 30;
  start_server(e, o);
  constexpr int kStreams = 1000;
  constexpr int kTokens = 24;
  // The streams the client closes (odd i) ask for far more tokens than it
  // takes a loaded machine to close them: each must end as an abort, never
  // finish first.
  constexpr int kTokensOfClosed = 4000;  // 20 s of tokens
  auto outcomes = run_concurrent_streams(
      port_, "/v1/completions", kStreams,
      [&](int i) {
        return Json{{"prompt", "p" + std::to_string(i)},
                    {"max_tokens", i % 2 == 1 ? kTokensOfClosed : kTokens},
                    {"stream", true},
                    {"stream_options", {{"include_usage", true}}}}
            .dump();
      },
      [](int i) { return i % 2 == 1 ? 3 : 0; }, 120.0);
  int num_complete = 0, num_closed = 0;
  for (int i = 0; i < kStreams; ++i) {
    const StreamOutcome& out = outcomes[i];
    if (i % 2 == 1) {
      EXPECT_TRUE(out.closed_early) << i << ": " << out.error;
      num_closed += out.closed_early;
      continue;
    }
    ASSERT_TRUE(out.complete) << i << ": " << out.error;
    ASSERT_EQ(out.status, 200);
    ASSERT_EQ(out.events.size(), static_cast<size_t>(kTokens + 2)) << i;  // tokens, usage, [DONE]
    std::string text;
    for (int k = 0; k < kTokens; ++k) text += Json::parse(out.events[k])["choices"][0]["text"].get<std::string>();
    size_t prompt_len = ("p" + std::to_string(i)).size();
    EXPECT_EQ(text, fake_text(prompt_len, kTokens)) << i;
    EXPECT_EQ(Json::parse(out.events[kTokens])["usage"]["completion_tokens"], kTokens) << i;
    ++num_complete;
  }
  EXPECT_EQ(num_complete, kStreams / 2);
  EXPECT_EQ(num_closed, kStreams / 2);
  // Within a few engine steps every aborted request is gone.
  ::baton::testing::wait_until([&] { return server_->service().num_active() <= 0; }, 10, 10);
  EXPECT_EQ(server_->service().num_active(), 0);
  std::string labels = "{model_name=\"fake-model\"}";
  EXPECT_EQ(metric("baton:num_requests_running" + labels), 0);
  EXPECT_EQ(metric("baton:num_requests_waiting" + labels), 0);
  EXPECT_EQ(metric("baton:num_kv_blocks_free" + labels), metric("baton:num_kv_blocks_total" + labels));
  double aborted = metric("baton:request_success_total{model_name=\"fake-model\",finished_reason=\"abort\"}");
  double length = metric("baton:request_success_total{model_name=\"fake-model\",finished_reason=\"length\"}");
  EXPECT_EQ(aborted + length, kStreams);
  EXPECT_EQ(aborted, engine_->num_aborted());
  EXPECT_EQ(aborted, kStreams / 2);
}

}  // namespace
}  // namespace baton::testing
