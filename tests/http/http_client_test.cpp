// The HTTP client against a small synchronous Beast server in a thread.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "http/http_client.h"
#include "http/sse_parser.h"

namespace baton::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

// Serves connections one at a time. Targets:
//   /len     200 with Content-Length, echoing the request body
//   /sse     chunked text/event-stream, 3 events written 20 ms apart
//   /drop    200, then closes the connection without saying so
//   /slow    waits 400 ms before answering
//   other    404
class TestServer {
 public:
  TestServer() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { run(); });
  }
  ~TestServer() {
    stop_ = true;
    beast::error_code ec;
    // Wake the accept with a throwaway connection.
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  int num_accepted() const { return num_accepted_; }
  std::string url(const std::string& target) const { return "http://127.0.0.1:" + std::to_string(port_) + target; }

 private:
  void run() {
    while (!stop_) {
      tcp::socket sock(io_);
      beast::error_code ec;
      acceptor_.accept(sock, ec);
      if (ec || stop_) return;
      ++num_accepted_;
      serve(sock);
    }
  }
  void serve(tcp::socket& sock) {
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request<bhttp::string_body> req;
      beast::error_code ec;
      bhttp::read(sock, buffer, req, ec);
      if (ec) return;
      std::string target(req.target());
      if (target == "/sse") {
        std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
        asio::write(sock, asio::buffer(head), ec);
        for (int i = 0; i < 3; ++i) {
          // Pacing under test: the events arrive apart, as a real stream's do.
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          std::string ev = "data: " + std::to_string(i) + "\n\n";
          char size[16];
          snprintf(size, sizeof(size), "%zx\r\n", ev.size());
          asio::write(sock, asio::buffer(std::string(size) + ev + "\r\n"), ec);
        }
        asio::write(sock, asio::buffer(std::string("0\r\n\r\n")), ec);
        if (ec) return;
        continue;
      }
      // A slow server is the thing under test (the client's timeout).
      if (target == "/slow") std::this_thread::sleep_for(std::chrono::milliseconds(400));
      bhttp::response<bhttp::string_body> res{
          target == "/len" || target == "/drop" || target == "/slow" ? bhttp::status::ok : bhttp::status::not_found,
          11};
      res.set("X-Test", "yes");
      res.body() = target == "/len" ? "echo:" + req.body() : std::string("body of ") + target;
      res.keep_alive(true);
      res.prepare_payload();
      bhttp::write(sock, res, ec);
      if (ec || target == "/drop") return;
    }
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> num_accepted_{0};
  std::thread thread_;
};

TEST(HttpClientTest, FetchEchoesBodyAndHeaders) {
  TestServer server;
  auto r = fetch(server.url("/len"), "POST", "hello");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "echo:hello");
  EXPECT_EQ(r->header("x-test"), "yes");
  auto missing = fetch(server.url("/nope"), "GET");
  ASSERT_TRUE(missing.is_ok());
  EXPECT_EQ(missing->status, 404);
}

TEST(HttpClientTest, StreamsChunksAsTheyArriveAndReusesConnection) {
  TestServer server;
  asio::io_context io;
  auto client = HttpClient::create(io.get_executor(), parse_url(server.url("/")).value()).value();
  std::vector<std::pair<std::string, double>> events;
  auto t0 = std::chrono::steady_clock::now();
  SseParser sse([&](const SseEvent& e) {
    events.emplace_back(e.data, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  });
  int status = 0;
  Status done = internal_error("not done");
  StreamHandlers h;
  h.on_headers = [&](int s, const std::vector<Header>&) { status = s; };
  h.on_data = [&](std::string_view b) { sse.feed(b); };
  h.on_done = [&](const Status& st) {
    done = st;
    // A second request from the completion handler reuses the connection.
    client->send(Request{.method = "POST", .target = "/len", .body = "again"}, [&](Result<Response> r) {
      ASSERT_TRUE(r.is_ok()) << r.status().to_string();
      EXPECT_EQ(r->body, "echo:again");
    });
  };
  client->stream(Request{.method = "GET", .target = "/sse"}, std::move(h));
  io.run();
  ASSERT_TRUE(done.is_ok()) << done.to_string();
  EXPECT_EQ(status, 200);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].first, "0");
  EXPECT_EQ(events[2].first, "2");
  // Delivered incrementally: the events are spread over the server's 40 ms.
  EXPECT_GT(events[2].second - events[0].second, 0.03);
  EXPECT_EQ(client->num_connections_opened(), 1u);
  EXPECT_EQ(server.num_accepted(), 1);
  EXPECT_EQ(client->num_idle_connections(), 1u);
}

TEST(HttpClientTest, StreamHandleCancelsOneExchange) {
  TestServer server;
  asio::io_context io;
  auto client = HttpClient::create(io.get_executor(), parse_url(server.url("/")).value()).value();
  int num_events = 0;
  Status done = internal_error("not done");
  StreamHandle handle;
  SseParser sse([&](const SseEvent&) {
    if (++num_events == 1) handle.cancel();  // from inside a handler
  });
  StreamHandlers h;
  h.on_data = [&](std::string_view b) { sse.feed(b); };
  h.on_done = [&](const Status& st) { done = st; };
  handle = client->stream(Request{.method = "GET", .target = "/sse"}, std::move(h));
  io.run();
  EXPECT_EQ(done.code(), StatusCode::kAborted) << done.to_string();
  EXPECT_EQ(num_events, 1);
  EXPECT_EQ(client->num_in_flight(), 0u);
  EXPECT_EQ(client->num_idle_connections(), 0u);  // a cancelled connection is not reused
}

TEST(HttpClientTest, RetriesOnceWhenPeerClosedIdleConnection) {
  TestServer server;
  asio::io_context io;
  auto client = HttpClient::create(io.get_executor(), parse_url(server.url("/")).value()).value();
  std::vector<int> statuses;
  client->send(Request{.method = "GET", .target = "/drop"}, [&](Result<Response> r) {
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    statuses.push_back(r->status);
    client->send(Request{.method = "GET", .target = "/len"}, [&](Result<Response> r2) {
      ASSERT_TRUE(r2.is_ok()) << r2.status().to_string();
      statuses.push_back(r2->status);
    });
  });
  io.run();
  EXPECT_EQ(statuses, (std::vector<int>{200, 200}));
  EXPECT_EQ(client->num_connections_opened(), 2u);
}

TEST(HttpClientTest, DeadlineAndUnreachablePeerAreClearErrors) {
  TestServer server;
  Request slow{.method = "GET", .target = "/slow"};
  slow.timeout_s = 0.1;
  auto r = fetch(parse_url(server.url("/slow")).value(), slow);
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().to_string();

  // A port nobody listens on: bind one, close it, then connect.
  uint16_t port;
  {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }
  auto refused = fetch("http://127.0.0.1:" + std::to_string(port) + "/", "GET");
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("connect"), std::string::npos) << refused.status().to_string();
  EXPECT_EQ(fetch("not a url", "GET").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(fetch(server.url("/len"), "BOGUS").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace baton::http
