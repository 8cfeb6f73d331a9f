// Opens many concurrent streaming requests from one thread (asynchronous
// Boost.Asio), optionally closing some mid-stream, and reports what each got.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "http_test_client.h"

namespace baton::testing {

struct StreamOutcome {
  bool closed_early = false;
  bool complete = false;  // ended with data: [DONE]
  int status = 0;
  std::vector<std::string> events;  // SSE payloads (complete streams only)
  std::string error;
};

// Splits a raw HTTP/1.1 chunked response into status and de-chunked body.
inline bool dechunk_response(const std::string& raw, int* status, std::string* body) {
  size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos || raw.compare(0, 9, "HTTP/1.1 ") != 0) return false;
  *status = std::atoi(raw.c_str() + 9);
  size_t p = head_end + 4;
  body->clear();
  while (p < raw.size()) {
    size_t eol = raw.find("\r\n", p);
    if (eol == std::string::npos) return false;
    size_t n = std::stoul(raw.substr(p, eol - p), nullptr, 16);
    if (n == 0) return true;
    if (eol + 2 + n + 2 > raw.size()) return false;
    body->append(raw, eol + 2, n);
    p = eol + 2 + n + 2;
  }
  return false;
}

// request_for(i): the JSON body of stream i (POSTed to path);
// close_after_events(i): close after that many events (0 = read to the end).
inline std::vector<StreamOutcome> run_concurrent_streams(int port, const std::string& path, int num_streams,
                                                         const std::function<std::string(int)>& request_for,
                                                         const std::function<int(int)>& close_after_events,
                                                         double timeout_s) {
  namespace net = boost::asio;
  using tcp = net::ip::tcp;
  net::io_context ioc;
  std::vector<StreamOutcome> outcomes(num_streams);
  struct Conn {
    tcp::socket socket;
    std::string request, raw;
    char buf[8192];
    int index = 0, close_after = 0, num_events = 0;
    explicit Conn(net::io_context& ioc) : socket(ioc) {}
  };
  std::vector<std::shared_ptr<Conn>> conns;
  tcp::endpoint ep(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
  net::steady_timer deadline(
      ioc, std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(timeout_s)));
  int remaining = num_streams;
  auto done = [&](const std::shared_ptr<Conn>& c) {
    boost::system::error_code ignored;
    c->socket.close(ignored);
    if (--remaining == 0) deadline.cancel();
  };

  std::function<void(std::shared_ptr<Conn>)> read_more = [&](std::shared_ptr<Conn> c) {
    c->socket.async_read_some(net::buffer(c->buf), [&, c](boost::system::error_code ec, size_t n) {
      StreamOutcome& out = outcomes[c->index];
      if (!ec) {
        size_t from = c->raw.size() >= 5 ? c->raw.size() - 5 : 0;
        c->raw.append(c->buf, n);
        for (size_t p = c->raw.find("data: ", from); p != std::string::npos; p = c->raw.find("data: ", p + 1)) {
          ++c->num_events;
        }
        if (c->close_after > 0 && c->num_events >= c->close_after) {
          out.closed_early = true;
          return done(c);
        }
        return read_more(c);
      }
      done(c);
      std::string body;
      if (!dechunk_response(c->raw, &out.status, &body)) {
        out.error = "incomplete response (" + ec.message() + "): " + c->raw.substr(0, 300);
        return;
      }
      std::string framing;
      out.events = sse_events(body, &framing);
      if (!framing.empty()) out.error = framing;
      out.complete = !out.events.empty() && out.events.back() == "[DONE]";
    });
  };

  for (int i = 0; i < num_streams; ++i) {
    auto c = std::make_shared<Conn>(ioc);
    c->index = i;
    c->close_after = close_after_events(i);
    c->request = build_request("POST", path, request_for(i));
    conns.push_back(c);
    c->socket.async_connect(ep, [&, c](boost::system::error_code ec) {
      if (ec) {
        outcomes[c->index].error = "connect: " + ec.message();
        return done(c);
      }
      net::async_write(c->socket, net::buffer(c->request), [&, c](boost::system::error_code ec2, size_t) {
        if (ec2) {
          outcomes[c->index].error = "write: " + ec2.message();
          return done(c);
        }
        read_more(c);
      });
    });
  }
  deadline.async_wait([&](boost::system::error_code ec) {
    if (ec) return;
    for (auto& c : conns) {
      if (c->socket.is_open()) {
        if (outcomes[c->index].error.empty()) outcomes[c->index].error = "timed out";
        c->socket.close();
      }
    }
  });
  ioc.run();
  return outcomes;
}

}  // namespace baton::testing
