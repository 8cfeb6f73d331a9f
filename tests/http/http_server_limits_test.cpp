// Bounded resources and last guards in the HTTP layer (issue 14): the
// connection cap, a handler that throws, a reply after events started, SSE
// heartbeats, and the client's first-byte and idle timeouts toward a peer
// that stops answering.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "http/http_client.h"
#include "http/http_server.h"
#include "support/wait.h"

namespace baton {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Reads until the peer closes or `timeout_s` passes.
std::string read_all(tcp::socket& s, double timeout_s = 5.0) {
  timeval tv{static_cast<time_t>(timeout_s), static_cast<suseconds_t>((timeout_s - static_cast<int>(timeout_s)) * 1e6)};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string out;
  char buf[4096];
  boost::system::error_code ec;
  for (;;) {
    size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
  }
  return out;
}

class Server {
 public:
  Server(HttpHandler handler, HttpServerOptions opts = {}) {
    opts.port = 0;
    server_ = std::make_unique<HttpServer>(opts, std::move(handler));
    EXPECT_TRUE(server_->start().is_ok());
  }
  std::string url(const std::string& target = "/") const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + target;
  }
  tcp::socket connect(asio::io_context& io) const {
    tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server_->port())});
    return s;
  }
  HttpServer& http() { return *server_; }

 private:
  std::unique_ptr<HttpServer> server_;
};

HttpHandler ok_handler() {
  return [](HttpRequest, std::shared_ptr<HttpExchange> ex) {
    HttpResponse r;
    r.body = "{}";
    ex->reply(std::move(r));
  };
}

template <typename Cond>
bool eventually(Cond cond, double timeout_s = 5.0) {
  return ::baton::testing::wait_until(cond, timeout_s, 5);
}

TEST(HttpServerLimitsTest, ConnectionsBeyondTheCapAreRefusedAt503) {
  HttpServerOptions opts;
  opts.max_connections = 2;
  Server server(ok_handler(), opts);
  asio::io_context io;
  std::vector<tcp::socket> idle;
  for (int i = 0; i < 2; ++i) idle.push_back(server.connect(io));
  ASSERT_TRUE(eventually([&] { return server.http().num_connections() == 2; }));
  tcp::socket extra = server.connect(io);
  std::string reply = read_all(extra);
  EXPECT_EQ(reply.rfind("HTTP/1.1 503", 0), 0u) << reply;
  EXPECT_NE(reply.find("Retry-After: 1"), std::string::npos) << reply;
  EXPECT_NE(reply.find("too many open connections"), std::string::npos) << reply;
  EXPECT_EQ(server.http().num_refused_connections(), 1u);
  // One closes: the next client is served.
  idle.front().close();
  ASSERT_TRUE(eventually([&] { return server.http().num_connections() == 1; }));
  auto r = http::fetch(server.url(), "GET");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 200);
}

TEST(HttpServerLimitsTest, AHandlerThatThrowsGets500AndTheServerServesOn) {
  std::atomic<bool> fail{true};
  Server server([&](HttpRequest req, std::shared_ptr<HttpExchange> ex) {
    if (fail.exchange(false)) throw std::runtime_error("injected fault");
    ok_handler()(std::move(req), std::move(ex));
  });
  auto r = http::fetch(server.url(), "GET");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 500);
  EXPECT_NE(r->body.find("internal_error"), std::string::npos) << r->body;
  auto ok = http::fetch(server.url(), "GET");
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(ok->status, 200);
}

TEST(HttpServerLimitsTest, AHandlerThatThrowsMidStreamEndsTheStreamWithTheError) {
  Server server([](HttpRequest, std::shared_ptr<HttpExchange> ex) {
    ex->start_events();
    ex->send_event("one");
    throw std::runtime_error("injected fault");
  });
  auto r = http::fetch(server.url(), "GET");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body.rfind("data: one\n\ndata: {\"error\"", 0), 0u) << r->body;
  EXPECT_EQ(r->body.find("data: ", 1), r->body.rfind("data: ")) << r->body;  // nothing after the error
}

TEST(HttpServerLimitsTest, AnswersAfterTheFirstAreDropped) {
  Server server([](HttpRequest, std::shared_ptr<HttpExchange> ex) {
    HttpResponse first;
    first.body = "first";
    ex->reply(std::move(first));
    HttpResponse second;
    second.body = "second";
    ex->reply(std::move(second));  // would corrupt the connection if written
    ex->start_events();
    ex->send_event("x");
    ex->end_events();
  });
  for (int i = 0; i < 2; ++i) {
    auto r = http::fetch(server.url(), "GET");
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ(r->body, "first");
  }
}

TEST(HttpServerLimitsTest, AnIdleStreamGetsHeartbeats) {
  HttpServerOptions opts;
  opts.limits.event_heartbeat_s = 0.1;
  Server server(
      [](HttpRequest, std::shared_ptr<HttpExchange> ex) {
        ex->start_events();
        auto timer = std::make_shared<asio::steady_timer>(ex->executor(), std::chrono::milliseconds(800));
        timer->async_wait([timer, ex](const boost::system::error_code&) {
          ex->send_event("late");
          ex->end_events();
        });
      },
      opts);
  auto r = http::fetch(server.url(), "GET");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->body.rfind(":\n\n:\n\n", 0), 0u) << r->body;  // comments only, while idle
  EXPECT_NE(r->body.find("data: late\n\n"), std::string::npos) << r->body;
}

// A server that answers nothing, or its headers and one chunk, then goes silent
// (as a process stopped with SIGSTOP does): the client gives up in time and
// closes its connection, which the server sees.
struct SilentPeer {
  explicit SilentPeer(bool send_headers) {
    HttpServerOptions opts;
    opts.limits.event_heartbeat_s = 0;
    server = std::make_unique<Server>(
        [this, send_headers](HttpRequest, std::shared_ptr<HttpExchange> ex) {
          ex->set_disconnect_handler([this] { ++num_disconnects; });
          if (send_headers) {
            ex->start_events();
            ex->send_event("first");
          }
          held.push_back(ex);  // never answered further
        },
        opts);
  }
  std::unique_ptr<Server> server;
  std::vector<std::shared_ptr<HttpExchange>> held;
  std::atomic<int> num_disconnects{0};
};

Status stream_with(const std::string& url, double first_byte_s, double idle_s, std::string* body) {
  asio::io_context io;
  auto client = http::HttpClient::create(io.get_executor(), http::parse_url(url).value()).value();
  http::Request req;
  req.method = "GET";
  req.target = "/";
  req.timeout_s = 30.0;
  req.first_byte_timeout_s = first_byte_s;
  req.idle_timeout_s = idle_s;
  Status out;
  http::StreamHandlers h;
  h.on_data = [body](std::string_view bytes) { body->append(bytes); };
  h.on_done = [&out](const Status& st) { out = st; };
  client->stream(std::move(req), std::move(h));
  io.run();
  return out;
}

TEST(HttpServerLimitsTest, ClientGivesUpOnAPeerThatSendsNoHeaders) {
  SilentPeer peer(/*send_headers=*/false);
  std::string body;
  Stopwatch sw;
  Status st = stream_with(peer.server->url(), 0.3, 0, &body);
  EXPECT_LT(sw.elapsed_s(), 3.0);
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded) << st.to_string();
  EXPECT_NE(st.message().find("no response headers within 0.300 s"), std::string::npos) << st.message();
  EXPECT_TRUE(eventually([&] { return peer.num_disconnects.load() == 1; }));
}

TEST(HttpServerLimitsTest, ClientGivesUpOnAPeerSilentMidStream) {
  SilentPeer peer(/*send_headers=*/true);
  std::string body;
  Stopwatch sw;
  Status st = stream_with(peer.server->url(), 5.0, 0.3, &body);
  EXPECT_LT(sw.elapsed_s(), 3.0);
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded) << st.to_string();
  EXPECT_NE(st.message().find("no body bytes within 0.300 s"), std::string::npos) << st.message();
  EXPECT_NE(body.find("data: first"), std::string::npos) << body;
  EXPECT_TRUE(eventually([&] { return peer.num_disconnects.load() == 1; }));
}

TEST(HttpServerLimitsTest, BodyLimitFollowsTheContext) {
  EXPECT_EQ(request_body_limit(0), kBodyBytesOverhead);
  EXPECT_EQ(request_body_limit(131072), (1u << 20) + 32u * 131072);  // 5 MiB
  EXPECT_GT(request_body_limit(1 << 20), request_body_limit(131072));
}

}  // namespace
}  // namespace baton
