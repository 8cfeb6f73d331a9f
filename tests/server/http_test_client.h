// A blocking HTTP/1.1 client for the server tests (Boost.Beast), with a
// receive timeout so that a broken server fails the test instead of hanging.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>

#include <map>
#include <string>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "common/json.h"

namespace baton::testing {

struct TestResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;                            // de-chunked
  std::string error;                           // transport error, "" if none
  Json json() const { return Json::parse(body, nullptr, false); }
};

inline void set_recv_timeout(boost::asio::ip::tcp::socket& s, double seconds) {
  timeval tv{static_cast<time_t>(seconds), static_cast<suseconds_t>((seconds - static_cast<int>(seconds)) * 1e6)};
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

inline boost::asio::ip::tcp::socket connect_to(boost::asio::io_context& ioc, int port) {
  boost::asio::ip::tcp::socket s(ioc);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  set_recv_timeout(s, 30.0);
  return s;
}

// Sends raw request bytes and reads one response.
inline TestResponse send_raw(int port, const std::string& bytes) {
  namespace http = boost::beast::http;
  TestResponse out;
  try {
    boost::asio::io_context ioc;
    auto s = connect_to(ioc, port);
    boost::asio::write(s, boost::asio::buffer(bytes));
    boost::beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ull << 30);
    http::read(s, buf, parser);
    auto& msg = parser.get();
    out.status = static_cast<int>(msg.result_int());
    for (const auto& f : msg) {
      std::string name(f.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(f.value());
    }
    out.body = msg.body();
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

inline std::string build_request(const std::string& method, const std::string& path, const std::string& body,
                                 const std::vector<std::string>& extra_headers = {}) {
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& h : extra_headers) req += h + "\r\n";
  if (!body.empty() || method == "POST") {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return req + "\r\n" + body;
}

inline TestResponse http_call(int port, const std::string& method, const std::string& path,
                              const std::string& body = "", const std::vector<std::string>& extra_headers = {}) {
  return send_raw(port, build_request(method, path, body, extra_headers));
}

// The payloads of "data: ..." events in an SSE body (comment lines, the
// server's heartbeats, skipped); checks the framing.
inline std::vector<std::string> sse_events(const std::string& body, std::string* framing_error = nullptr) {
  std::vector<std::string> events;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end != std::string::npos && body.compare(pos, 1, ":") == 0) {  // a comment (heartbeat)
      pos = end + 2;
      continue;
    }
    if (end == std::string::npos || body.compare(pos, 6, "data: ") != 0) {
      if (framing_error) *framing_error = "bad SSE framing at byte " + std::to_string(pos);
      break;
    }
    events.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end + 2;
  }
  return events;
}

// Reads a streaming response until `count` events have arrived (counting
// "data: " in the raw bytes) or the stream ends; returns the raw bytes.
inline std::string read_events(boost::asio::ip::tcp::socket& s, int count) {
  std::string raw;
  char buf[4096];
  while (true) {
    int seen = 0;
    for (size_t p = raw.find("data: "); p != std::string::npos; p = raw.find("data: ", p + 1)) ++seen;
    if (seen >= count) break;
    boost::system::error_code ec;
    size_t n = s.read_some(boost::asio::buffer(buf), ec);
    if (ec) break;
    raw.append(buf, n);
  }
  return raw;
}

// Value of the series "name{labels}" in the server's /metrics (-1 if absent).
inline double metric_value(int port, const std::string& series) {
  std::string text = "\n" + send_raw(port, build_request("GET", "/metrics", "")).body;
  size_t p = text.find("\n" + series + " ");
  if (p == std::string::npos) return -1;
  return std::stod(text.substr(p + series.size() + 2));
}

}  // namespace baton::testing
