// One HTTP request and the channel to answer it: a whole response, or a
// server-sent-event stream. The handler and every method of HttpExchange run
// on the connection's executor (a strand): post there from other threads.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

namespace baton {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // the target without the query string
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

class HttpExchange {
 public:
  virtual ~HttpExchange() = default;

  virtual boost::asio::any_io_executor executor() = 0;
  // Answers with a whole response. Call at most once, and not after start_events.
  virtual void reply(HttpResponse response) = 0;
  // Starts a 200 text/event-stream response (chunked).
  virtual void start_events() = 0;
  // Queues "data: <data>\n\n" and writes it as soon as the socket allows.
  virtual void send_event(std::string_view data) = 0;
  // Ends the stream; the connection may then serve the next request.
  virtual void end_events() = 0;
  // Called once (on the executor) if the client goes away before the
  // response is complete: closed, reset, or timed out while writing.
  virtual void set_disconnect_handler(std::function<void()> on_disconnect) = 0;
  virtual bool disconnected() const = 0;
};

using HttpHandler = std::function<void(HttpRequest, std::shared_ptr<HttpExchange>)>;

}  // namespace baton
