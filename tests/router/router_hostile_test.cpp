// The router under hostile input and broken instances (issue 14): every probe
// ends in a 4xx/5xx or an error event for that client alone, and the router
// serves the next request.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <fstream>
#include <stdexcept>
#include <thread>

#include "common/clock.h"
#include "fake_instance.h"
#include "http/sse_parser.h"
#include "support/wait.h"

namespace baton::router {
namespace {

namespace asio = boost::asio;

// The error object of an OpenAI-style error body (null when the body is not one).
Json error_of(const std::string& body) {
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object()) return nullptr;
  return j["error"];
}

// Sends raw bytes and reads until the peer closes or `timeout_s` passes.
std::string raw_exchange(int port, const std::string& bytes, double timeout_s = 10.0) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  timeval tv{static_cast<time_t>(timeout_s), 0};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  boost::system::error_code ec;
  asio::write(s, asio::buffer(bytes), ec);
  std::string out;
  char buf[4096];
  for (;;) {
    size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
  }
  return out;
}

int port_of(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

class PdRouter {
 public:
  explicit PdRouter(RouterServiceOptions opts = RouterFixture::options_for(RouterMode::kPd))
      : prefill("P0"), decode("D0"), router(opts, make_routing_policy("round_robin").value()) {
    router.pool.add(prefill.url(), PoolRole::kPrefill);
    router.pool.add(decode.url(), PoolRole::kDecode);
  }
  void expect_still_serving() {
    auto r = router.post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 2}});
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ(r->status, 200) << r->body;
  }
  FakeInstance prefill, decode;
  RouterFixture router;
};

TEST(RouterHostileTest, NumberOutOfRangeIs400NamingIt) {
  PdRouter pd;
  auto r = http::fetch(pd.router.url() + "/v1/completions", "POST", R"({"prompt": "x", "temperature": 1e400})");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 400) << r->body;
  Json err = error_of(r->body);
  ASSERT_TRUE(err.is_object()) << r->body;
  EXPECT_NE(err["message"].get<std::string>().find("1e400"), std::string::npos) << err;
  EXPECT_TRUE(pd.prefill.bodies().empty());  // refused before any instance saw it
  pd.expect_still_serving();
}

TEST(RouterHostileTest, InvalidUtf8InBodyOrPathGetsAValidJsonError) {
  PdRouter pd;
  auto r = http::fetch(pd.router.url() + "/v1/completions", "POST", "{\"prompt\": \"\xff\xfe\"}");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_TRUE(error_of(r->body).is_object()) << r->body;  // serialised despite the bytes it quotes

  std::string reply = raw_exchange(port_of(pd.router.url()),
                                   "GET /v1/\xff\xfe\xc3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(reply.rfind("HTTP/1.1 4", 0), 0u) << reply;  // 404, or 400 where the HTTP parser refuses the target
  std::string body = reply.substr(reply.find("\r\n\r\n") + 4);
  EXPECT_TRUE(error_of(body).is_object()) << body;
  pd.expect_still_serving();
}

TEST(RouterHostileTest, DeepNestingIs400) {
  PdRouter pd;
  const int levels = 100000;
  std::string body = R"({"prompt": "x", "metadata": )" + std::string(levels, '[') + std::string(levels, ']') + "}";
  auto r = http::fetch(pd.router.url() + "/v1/completions", "POST", body);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 400) << r->body.substr(0, 300);
  EXPECT_NE(error_of(r->body)["message"].get<std::string>().find("nested deeper than 64"), std::string::npos);
  pd.expect_still_serving();
}

size_t rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

TEST(RouterHostileTest, SixtyMegabyteBodyIsRefusedBeforeItIsRead) {
  HttpServerOptions hopts;
  hopts.limits.max_body_bytes = request_body_limit(131072);
  PdRouter pd;
  RouterFixture router(RouterFixture::options_for(RouterMode::kPd), make_routing_policy("round_robin").value(), hopts);
  router.pool.add(pd.prefill.url(), PoolRole::kPrefill);
  router.pool.add(pd.decode.url(), PoolRole::kDecode);
  size_t before = rss_bytes();
  // The headers announce 60 MB; 1 MB of it follows. The 413 comes at once.
  std::string bytes =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 60000000\r\n\r\n{\"prompt\": \"" +
      std::string(1 << 20, 'a');
  Stopwatch sw;
  std::string reply = raw_exchange(port_of(router.url()), bytes);
  EXPECT_LT(sw.elapsed_s(), 5.0);
  ASSERT_EQ(reply.rfind("HTTP/1.1 413", 0), 0u) << reply.substr(0, 200);
  EXPECT_LT(rss_bytes(), before + (16u << 20));
  EXPECT_TRUE(pd.prefill.bodies().empty());
  auto ok = http::fetch(router.url() + "/v1/completions", "POST", R"({"prompt": "x"})");
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(ok->status, 200) << ok->body;
}

TEST(RouterHostileTest, AWholeContextPromptFitsTheDefaultBodyLimit) {
  const int tokens = 131072;
  size_t limit = request_body_limit(tokens);
  // As token ids of six digits.
  std::string ids = "[";
  for (int i = 0; i < tokens; ++i) ids += (i ? ", " : "") + std::to_string(151000 + i % 900);
  ids += "]";
  EXPECT_LT((R"({"prompt": )" + ids + "}").size(), limit);
  // As text of one JSON-escaped non-ASCII character (\uXXXX) per token, in a chat message.
  std::string escaped;
  for (int i = 0; i < tokens; ++i) escaped += "\\u4e2d";
  std::string chat = R"({"messages": [{"role": "user", "content": ")" + escaped + R"("}], "max_tokens": 16})";
  EXPECT_LT(chat.size(), limit);
  EXPECT_TRUE(parse_json(chat).is_ok());
  EXPECT_LT(limit, 8u << 20);  // and nothing much larger is read
}

TEST(RouterHostileTest, DecodeStoppedMidStreamEndsTheClientStreamInSeconds) {
  RouterServiceOptions opts = RouterFixture::options_for(RouterMode::kPd);
  opts.idle_timeout_s = 0.5;
  PdRouter pd(opts);
  pd.decode.stall_s = 30;  // one event, then silence: no heartbeat (a SIGSTOPped process)
  Stopwatch sw;
  auto r = http::fetch(pd.router.url() + "/v1/completions", "POST", Json{{"prompt", "x"}, {"stream", true}}.dump(),
                       20.0);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_LT(sw.elapsed_s(), 5.0);
  EXPECT_EQ(r->status, 200);
  std::vector<std::string> events;
  http::SseParser parser([&](const http::SseEvent& e) { events.push_back(e.data); });
  parser.feed(r->body);
  parser.finish();
  ASSERT_EQ(events.size(), 2u) << r->body;
  EXPECT_NE(events[0].find("first"), std::string::npos);
  Json err = error_of(events[1]);
  ASSERT_TRUE(err.is_object()) << events[1];
  EXPECT_NE(err["message"].get<std::string>().find("stopped answering"), std::string::npos) << err;
  // The router gave up: it closed its upstream, so the instance aborts the request.
  ::baton::testing::wait_until([&] { return pd.decode.num_disconnects.load() != 0; }, 2, 20);
  EXPECT_EQ(pd.decode.num_disconnects.load(), 1);
  pd.decode.stall_s = 0;
  pd.expect_still_serving();
}

TEST(RouterHostileTest, HeartbeatsKeepABusyInstanceAlive) {
  RouterServiceOptions opts = RouterFixture::options_for(RouterMode::kAgg);
  opts.idle_timeout_s = 0.6;
  FakeInstance busy("B", /*heartbeat_s=*/0.1);
  busy.stall_s = 1.5;  // silent but for heartbeats, longer than the idle timeout
  RouterFixture router(opts, make_routing_policy("round_robin").value());
  router.pool.add(busy.url(), PoolRole::kReplica);
  auto r = http::fetch(router.url() + "/v1/completions", "POST", Json{{"prompt", "x"}, {"stream", true}}.dump(), 20.0);
  ASSERT_TRUE(r.is_ok());
  EXPECT_NE(r->body.find("rest"), std::string::npos) << r->body;
  EXPECT_EQ(r->body.find("error"), std::string::npos) << r->body;
  EXPECT_EQ(busy.num_disconnects.load(), 0);
}

TEST(RouterHostileTest, InstanceThatSendsNoHeadersIsGivenUp) {
  RouterServiceOptions opts = RouterFixture::options_for(RouterMode::kAgg);
  opts.first_byte_timeout_s = 0.5;
  FakeInstance mute("M");
  mute.no_headers = true;
  RouterFixture router(opts, make_routing_policy("round_robin").value());
  router.pool.add(mute.url(), PoolRole::kReplica);
  Stopwatch sw;
  auto r = http::fetch(router.url() + "/v1/completions", "POST", Json{{"prompt", "x"}, {"stream", true}}.dump(), 20.0);
  ASSERT_TRUE(r.is_ok());
  EXPECT_LT(sw.elapsed_s(), 5.0);
  EXPECT_EQ(r->status, 502) << r->body;
  EXPECT_NE(r->body.find("no response headers"), std::string::npos) << r->body;
  ::baton::testing::wait_until([&] { return mute.num_disconnects.load() != 0; }, 2, 20);
  EXPECT_EQ(mute.num_disconnects.load(), 1);
}

// A policy that fails the way a bug would: the router's last guard answers
// 500 for that request and serves the next.
class ThrowingPolicy : public RoutingPolicy {
 public:
  InstancePtr pick(const std::vector<InstancePtr>& candidates, const RouteKey&, const Instance*) override {
    if (fail.exchange(false)) throw std::runtime_error("injected fault");
    return candidates.front();
  }
  static inline std::atomic<bool> fail{false};
};

TEST(RouterHostileTest, UnexpectedExceptionIs500AndTheRouterServesOn) {
  FakeInstance a("A");
  RouterFixture router(RouterFixture::options_for(RouterMode::kAgg), std::make_unique<ThrowingPolicy>());
  router.pool.add(a.url(), PoolRole::kReplica);
  ThrowingPolicy::fail = true;
  auto r = router.post("/v1/completions", {{"prompt", "x"}});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 500) << r->body;
  EXPECT_TRUE(error_of(r->body).is_object()) << r->body;
  auto ok = router.post("/v1/completions", {{"prompt", "x"}});
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(ok->status, 200) << ok->body;
  // The calls end once their last step has run (just after the reply is written).
  ::baton::testing::wait_until([&] { return router.service_->num_in_flight() <= 0; }, 2, 20);
  EXPECT_EQ(router.service_->num_in_flight(), 0);
}

}  // namespace
}  // namespace baton::router
