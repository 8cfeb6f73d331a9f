// A small asynchronous HTTP/1.1 client over Boost.Beast, for one origin
// (host:port): keep-alive connection pool, per-request deadline, streamed
// response bodies (decoded from chunked encoding) delivered as they arrive.
//
//   asio::io_context io;
//   auto client = HttpClient::create(io.get_executor(), url).value();
//   client->stream(Request{.target = "/v1/completions", .body = json},
//                  {.on_headers = [](int status) {...},
//                   .on_data = [&](std::string_view bytes) { sse.feed(bytes); },
//                   .on_done = [](const Status& st) {...}});
//   io.run();
//
// Threading: a client lives on one executor (an io_context run by one thread,
// or a strand). stream() may be called from any thread: it dispatches onto
// that executor, and every handler runs there. For blocking one-shot calls
// use fetch() below.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "common/status.h"
#include "http/url.h"

namespace baton::http {

struct Header {
  std::string name;
  std::string value;
};

struct Request {
  std::string method = "POST";
  std::string target = "/";  // path and query
  std::string body;          // sent only when not empty (or method is POST/PUT)
  std::string content_type = "application/json";
  std::vector<Header> headers;  // extra headers (Authorization, Accept, ...)
  double timeout_s = 600.0;     // deadline for the whole exchange, connect included
  // A peer that stops answering (a stopped process keeps its sockets open)
  // fails the exchange with kDeadlineExceeded after these, 0 = only timeout_s:
  double first_byte_timeout_s = 0;  // from the request written to the response headers
  double idle_timeout_s = 0;        // between two reads of body bytes
};

struct Response {
  int status = 0;
  std::vector<Header> headers;
  std::string body;

  // The first header of that name (case-insensitive), or "" when absent.
  std::string header(std::string_view name) const;
};

struct StreamHandlers {
  // Once, when the status line and headers are in (before any on_data).
  std::function<void(int status, const std::vector<Header>& headers)> on_headers;
  // Body bytes as they arrive (chunked encoding already removed).
  std::function<void(std::string_view bytes)> on_data;
  // Exactly once: OK when the whole response was read (whatever its status
  // code); kDeadlineExceeded on timeout, kUnavailable when the peer could not
  // be reached or closed the connection early, kAborted after cancel_all().
  std::function<void(const Status& status)> on_done;
};

struct ClientOptions {
  size_t max_idle_connections = 4096;  // kept open for reuse; beyond that, closed
  size_t read_buffer_bytes = 8192;     // per request, for body bytes
  std::string user_agent = "baton";
};

struct Exchange;

// Cancels one exchange started by HttpClient::stream(): its on_done gets
// kAborted and its connection is closed (so the server sees the client go).
// Thread-safe; a no-op once the exchange is done. Default-constructed: no-op.
class StreamHandle {
 public:
  void cancel() const;

 private:
  friend class HttpClient;
  std::weak_ptr<Exchange> exchange_;
  boost::asio::any_io_executor executor_;
};

class HttpClient : public std::enable_shared_from_this<HttpClient> {
 public:
  // Resolves the origin's host now (a name that cannot be resolved is an error).
  static Result<std::shared_ptr<HttpClient>> create(boost::asio::any_io_executor executor, const Url& origin,
                                                    ClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts one exchange; the handlers run on the client's executor. The
  // handle cancels this exchange alone.
  StreamHandle stream(Request request, StreamHandlers handlers);
  // Like stream(), collecting the body: `done` gets the whole response.
  void send(Request request, std::function<void(Result<Response>)> done);
  // Closes every connection; exchanges in flight end with kAborted.
  void cancel_all();

  const Url& origin() const { return origin_; }
  // Counters (read from the executor's thread for exact values).
  size_t num_idle_connections() const;
  size_t num_connections_opened() const { return num_connections_opened_; }
  size_t num_in_flight() const { return num_in_flight_; }

  struct Impl;  // the pool and endpoint, shared with exchanges in flight

 private:
  HttpClient(boost::asio::any_io_executor executor, Url origin, ClientOptions options);

  boost::asio::any_io_executor executor_;
  Url origin_;
  ClientOptions options_;
  std::shared_ptr<Impl> impl_;
  size_t num_connections_opened_ = 0;
  size_t num_in_flight_ = 0;
  friend struct Exchange;
};

// Blocking one-shot request on its own io_context (health checks, tests,
// small control calls). `url` names the origin and target.
Result<Response> fetch(const Url& url, Request request);
Result<Response> fetch(std::string_view url, std::string_view method, std::string body = {}, double timeout_s = 30.0);

}  // namespace baton::http
