// The router against fake instances (HTTP servers speaking the PD protocol):
// the handoff's request shapes, SSE relay, retry, health, and cancellation.
#include "router/router_service.h"

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <mutex>
#include <thread>

#include "common/json.h"
#include "fake_instance.h"
#include "http/http_client.h"
#include "http/http_server.h"
#include "http/sse_parser.h"
#include "router/health_checker.h"
#include "support/wait.h"

namespace baton::router {
namespace {

std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  http::SseParser parser([&](const http::SseEvent& e) { out.push_back(e.data); });
  parser.feed(body);
  parser.finish();
  return out;
}

TEST(RouterServiceTest, PdHandoffShapesAndStreaming) {
  FakeInstance prefill("P0"), decode("D0");
  RouterFixture router(RouterMode::kPd);
  router.pool.add(prefill.url(), PoolRole::kPrefill);
  router.pool.add(decode.url(), PoolRole::kDecode);

  Json req = {{"model", "m"},    {"prompt", "hello"}, {"max_tokens", 5},
              {"min_tokens", 2}, {"stream", true},    {"stream_options", {{"include_usage", true}}}};
  auto r = router.post("/v1/completions", req);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 200);
  auto events = sse_data(r->body);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_NE(events[0].find("D0:P0"), std::string::npos);  // decode saw the prefill's params
  EXPECT_EQ(events[3], "[DONE]");

  auto pb = prefill.bodies();
  ASSERT_EQ(pb.size(), 1u);
  EXPECT_EQ(pb[0]["max_tokens"], 1);
  EXPECT_EQ(pb[0]["stream"], false);
  EXPECT_FALSE(pb[0].contains("stream_options"));
  EXPECT_FALSE(pb[0].contains("min_tokens"));
  EXPECT_EQ(pb[0]["kv_transfer_params"]["do_remote_decode"], true);
  auto db = decode.bodies();
  ASSERT_EQ(db.size(), 1u);
  EXPECT_EQ(db[0]["max_tokens"], 5);  // the original request
  EXPECT_EQ(db[0]["min_tokens"], 2);
  EXPECT_EQ(db[0]["kv_transfer_params"]["remote_block_ids"], Json({3, 4}));

  req["stream"] = false;
  req.erase("stream_options");  // only allowed with stream (the router checks requests as instances do)
  r = router.post("/v1/completions", req);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(Json::parse(r->body)["choices"][0]["text"], "D0:P0");
}

TEST(RouterServiceTest, PrefillThatCannotConnectIsRetriedOnAnother) {
  FakeInstance prefill("P1"), decode("D0");
  RouterFixture router(RouterMode::kPd);
  router.pool.add("http://127.0.0.1:1", PoolRole::kPrefill);  // nothing listens there
  router.pool.add(prefill.url(), PoolRole::kPrefill);
  router.pool.add(decode.url(), PoolRole::kDecode);
  for (int i = 0; i < 4; ++i) {
    auto r = router.post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 3}});
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(Json::parse(r->body)["choices"][0]["text"], "D0:P1");
  }
  std::string metrics = router.service_->metrics().render();
  EXPECT_NE(metrics.find("baton:router_retries_total{role=\"prefill\"} 1"), std::string::npos) << metrics;
}

TEST(RouterServiceTest, AggBalancesAndHealthChecksTakeDeadOnesOut) {
  FakeInstance a("A"), b("B");
  RouterFixture router(RouterMode::kAgg);
  router.pool.add(a.url(), PoolRole::kReplica);
  router.pool.add(b.url(), PoolRole::kReplica);
  router.pool.add("http://127.0.0.1:1", PoolRole::kReplica);
  HealthChecker health(router.pool, 10.0, 1.0);
  health.check_all();
  EXPECT_EQ(router.pool.healthy(PoolRole::kReplica).size(), 2u);
  std::map<std::string, int> seen;
  for (int i = 0; i < 6; ++i) {
    auto r = router.post("/v1/completions", {{"prompt", "x"}});
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->status, 200);
    seen[Json::parse(r->body)["choices"][0]["text"]]++;
  }
  EXPECT_EQ(seen["A:local"], 3);
  EXPECT_EQ(seen["B:local"], 3);
  auto health_r = http::fetch(router.url() + "/health", "GET");
  ASSERT_TRUE(health_r.is_ok());
  EXPECT_EQ(health_r->status, 200);
}

TEST(RouterServiceTest, NoHealthyInstanceIs503AndBadJsonIs400) {
  RouterFixture router(RouterMode::kPd);
  auto r = router.post("/v1/completions", {{"prompt", "x"}});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 503);
  EXPECT_NE(r->body.find("no healthy prefill"), std::string::npos);
  auto bad = http::fetch(router.url() + "/v1/completions", "POST", "{nope", 5.0);
  ASSERT_TRUE(bad.is_ok());
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("\"error\""), std::string::npos);
  auto health_r = http::fetch(router.url() + "/health", "GET");
  EXPECT_EQ(health_r->status, 503);
  auto missing = http::fetch(router.url() + "/v2/nothing", "GET");
  EXPECT_EQ(missing->status, 404);
}

TEST(RouterServiceTest, ClientDisconnectCancelsTheDecodeStream) {
  FakeInstance prefill("P0"), decode("D0");
  decode.slow_stream = true;
  RouterFixture router(RouterMode::kPd);
  router.pool.add(prefill.url(), PoolRole::kPrefill);
  router.pool.add(decode.url(), PoolRole::kDecode);

  boost::asio::io_context io;
  auto client = http::HttpClient::create(io.get_executor(), http::parse_url(router.url()).value()).value();
  http::Request req;
  req.target = "/v1/completions";
  req.body = Json{{"prompt", "x"}, {"stream", true}}.dump();
  std::atomic<bool> got_first{false};
  http::StreamHandle handle;
  http::StreamHandlers h;
  h.on_data = [&](std::string_view) {
    if (!got_first.exchange(true)) handle.cancel();  // go away after the first event
  };
  Status done_status;
  h.on_done = [&](const Status& st) { done_status = st; };
  handle = client->stream(req, h);
  io.run();
  EXPECT_TRUE(got_first.load());
  EXPECT_EQ(done_status.code(), StatusCode::kAborted);
  ::baton::testing::wait_until([&] { return decode.num_disconnects.load() != 0; }, 2, 20);
  EXPECT_EQ(decode.num_disconnects.load(), 1);  // the router closed its upstream stream
  ::baton::testing::wait_until([&] { return router.service_->num_in_flight() <= 0; }, 2, 20);
  EXPECT_EQ(router.service_->num_in_flight(), 0);
}

}  // namespace
}  // namespace baton::router
