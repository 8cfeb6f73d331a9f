#include "http/http_client.h"

#include <chrono>
#include <limits>
#include <optional>
#include <unordered_set>

#include <boost/asio/connect.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/clock.h"

namespace baton::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

struct Connection {
  explicit Connection(const asio::any_io_executor& ex) : stream(ex) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  bool reused = false;
};

}  // namespace

std::string Response::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) return h.value;
  }
  return {};
}

struct Exchange;

struct HttpClient::Impl {
  tcp::resolver::results_type endpoints;
  std::vector<std::unique_ptr<Connection>> idle;
  std::unordered_set<Exchange*> active;
};

// One request/response on one connection (retried once on a fresh connection
// when a reused keep-alive connection turns out to be closed by the peer).
struct Exchange : std::enable_shared_from_this<Exchange> {
  Exchange(std::shared_ptr<HttpClient> c, Request r, StreamHandlers h)
      : client(std::move(c)), request(std::move(r)), handlers(std::move(h)) {}

  std::shared_ptr<HttpClient> client;
  Request request;
  StreamHandlers handlers;
  std::unique_ptr<Connection> conn;
  bhttp::request<bhttp::string_body> req;
  std::optional<bhttp::response_parser<bhttp::buffer_body>> parser;
  std::unique_ptr<char[]> buf;
  size_t buf_size = 0;
  TimePoint deadline;
  bool got_headers = false;
  bool retried = false;
  bool done = false;
  bool cancelled = false;
  const char* timeout_what = nullptr;  // set while a shorter read timer than the deadline runs
  double timeout_wait_s = 0;

  HttpClient::Impl& impl() { return *client->impl_; }

  void start() {
    if (cancelled)
      return finish(aborted("{} {}{}: cancelled", request.method, client->origin_.host_port(), request.target));
    auto verb = bhttp::string_to_verb(request.method);
    if (verb == bhttp::verb::unknown) {
      finish(invalid_argument("unknown HTTP method '{}'", request.method));
      return;
    }
    deadline = SteadyClock::now() +
               std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(request.timeout_s));
    req = bhttp::request<bhttp::string_body>(verb, request.target, 11);
    req.set(bhttp::field::host, client->origin_.host_port());
    req.set(bhttp::field::user_agent, client->options_.user_agent);
    for (const auto& h : request.headers) req.set(h.name, h.value);
    if (!request.body.empty() || verb == bhttp::verb::post || verb == bhttp::verb::put) {
      req.set(bhttp::field::content_type, request.content_type);
      req.body() = std::move(request.body);
    }
    req.keep_alive(true);
    req.prepare_payload();
    buf_size = client->options_.read_buffer_bytes;
    buf = std::make_unique<char[]>(buf_size);
    impl().active.insert(this);
    ++client->num_in_flight_;
    acquire(/*allow_idle=*/true);
  }

  void acquire(bool allow_idle) {
    if (allow_idle && !impl().idle.empty()) {
      conn = std::move(impl().idle.back());
      impl().idle.pop_back();
      conn->reused = true;
      write();
      return;
    }
    conn = std::make_unique<Connection>(client->executor_);
    ++client->num_connections_opened_;
    conn->stream.expires_at(deadline);
    conn->stream.async_connect(impl().endpoints,
                               [self = shared_from_this()](const beast::error_code& ec, const tcp::endpoint&) {
                                 if (ec) return self->fail(ec, "connect");
                                 beast::error_code ignored;
                                 self->conn->stream.socket().set_option(tcp::no_delay(true), ignored);
                                 self->write();
                               });
  }

  void write() {
    if (done) return;
    parser.emplace();
    parser->body_limit(std::numeric_limits<std::uint64_t>::max());
    conn->stream.expires_at(deadline);
    bhttp::async_write(conn->stream, req, [self = shared_from_this()](const beast::error_code& ec, size_t) {
      if (ec) return self->fail(ec, "write");
      self->read_header();
    });
  }

  // The next read's deadline: `wait_s` from now (0 = none), never past the
  // whole exchange's deadline.
  void arm_read_timer(double wait_s, const char* waiting_for) {
    TimePoint at = deadline;
    timeout_what = nullptr;
    if (wait_s > 0) {
      TimePoint soon = SteadyClock::now() +
                       std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(wait_s));
      if (soon < at) {
        at = soon;
        timeout_what = waiting_for;
        timeout_wait_s = wait_s;
      }
    }
    conn->stream.expires_at(at);
  }

  void read_header() {
    arm_read_timer(request.first_byte_timeout_s, "no response headers");
    bhttp::async_read_header(conn->stream, conn->buffer, *parser,
                             [self = shared_from_this()](const beast::error_code& ec, size_t) {
                               if (ec) return self->fail(ec, "read");
                               self->on_header();
                             });
  }

  void on_header() {
    if (done) return;
    got_headers = true;
    if (handlers.on_headers) {
      std::vector<Header> headers;
      for (const auto& f : parser->get()) {
        headers.push_back({std::string(f.name_string()), std::string(f.value())});
      }
      handlers.on_headers(static_cast<int>(parser->get().result_int()), headers);
    }
    read_body();
  }

  void read_body() {
    if (done) return;
    if (parser->is_done()) return complete();
    parser->get().body().data = buf.get();
    parser->get().body().size = buf_size;
    arm_read_timer(request.idle_timeout_s, "no body bytes");
    bhttp::async_read_some(conn->stream, conn->buffer, *parser,
                           [self = shared_from_this()](beast::error_code ec, size_t) {
                             if (ec == bhttp::error::need_buffer) ec = {};
                             size_t got = self->buf_size - self->parser->get().body().size;
                             if (got > 0 && self->handlers.on_data && !self->done) {
                               self->handlers.on_data(std::string_view(self->buf.get(), got));
                             }
                             if (ec) return self->fail(ec, "read");
                             self->read_body();
                           });
  }

  void complete() {
    bool keep = parser->keep_alive() && conn->stream.socket().is_open();
    if (keep && impl().idle.size() < client->options_.max_idle_connections) {
      conn->stream.expires_never();
      conn->buffer.clear();
      impl().idle.push_back(std::move(conn));
    }
    finish(Status::ok());
  }

  void fail(const beast::error_code& ec, const char* what) {
    if (done) return;
    if (cancelled) {
      finish(aborted("{} {}{}: cancelled", request.method, client->origin_.host_port(), request.target));
      return;
    }
    bool stale = ec == asio::error::eof || ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset ||
                 ec == asio::error::broken_pipe;
    if (stale && conn && conn->reused && !got_headers && !retried) {
      retried = true;  // the peer closed an idle keep-alive connection: one fresh try
      conn.reset();
      acquire(/*allow_idle=*/false);
      return;
    }
    if (ec == beast::error::timeout && timeout_what) {
      finish(deadline_exceeded("{} {}{}: {} within {:.3f} s: the peer stopped answering", request.method,
                               client->origin_.host_port(), request.target, timeout_what, timeout_wait_s));
    } else if (ec == beast::error::timeout) {
      finish(deadline_exceeded("{} {}{}: no complete response within {:.3f} s", request.method,
                               client->origin_.host_port(), request.target, request.timeout_s));
    } else if (ec == asio::error::operation_aborted) {
      finish(aborted("{} {}{}: cancelled", request.method, client->origin_.host_port(), request.target));
    } else {
      finish(unavailable("{} {}{}: {} failed: {}", request.method, client->origin_.host_port(), request.target, what,
                         ec.message()));
    }
  }

  void finish(Status status) {
    if (done) return;
    done = true;
    impl().active.erase(this);
    --client->num_in_flight_;
    if (!status.is_ok()) conn.reset();
    auto on_done = std::move(handlers.on_done);
    handlers = {};
    if (on_done) on_done(status);
  }

  void cancel() {
    cancelled = true;
    if (conn) {
      beast::error_code ignored;
      conn->stream.socket().close(ignored);
    }
  }
};

HttpClient::HttpClient(asio::any_io_executor executor, Url origin, ClientOptions options)
    : executor_(std::move(executor)),
      origin_(std::move(origin)),
      options_(std::move(options)),
      impl_(std::make_shared<Impl>()) {}

HttpClient::~HttpClient() = default;

Result<std::shared_ptr<HttpClient>> HttpClient::create(asio::any_io_executor executor, const Url& origin,
                                                       ClientOptions options) {
  if (options.read_buffer_bytes == 0) return invalid_argument("read_buffer_bytes must be > 0");
  std::shared_ptr<HttpClient> client(new HttpClient(executor, origin, std::move(options)));
  try {
    tcp::resolver resolver(executor);
    client->impl_->endpoints = resolver.resolve(origin.host, std::to_string(origin.port));
  } catch (const boost::system::system_error& e) {
    return unavailable("cannot resolve '{}': {}", origin.host, e.code().message());
  }
  if (client->impl_->endpoints.empty()) return unavailable("'{}' resolved to no address", origin.host);
  return client;
}

StreamHandle HttpClient::stream(Request request, StreamHandlers handlers) {
  auto ex = std::make_shared<Exchange>(shared_from_this(), std::move(request), std::move(handlers));
  asio::dispatch(executor_, [ex] { ex->start(); });
  StreamHandle handle;
  handle.exchange_ = ex;
  handle.executor_ = executor_;
  return handle;
}

void StreamHandle::cancel() const {
  if (!executor_) return;
  asio::dispatch(executor_, [weak = exchange_] {
    if (auto ex = weak.lock()) {
      if (!ex->done) ex->cancel();
    }
  });
}

void HttpClient::send(Request request, std::function<void(Result<Response>)> done) {
  auto response = std::make_shared<Response>();
  StreamHandlers h;
  h.on_headers = [response](int status, const std::vector<Header>& headers) {
    response->status = status;
    response->headers = headers;
  };
  h.on_data = [response](std::string_view bytes) { response->body.append(bytes); };
  h.on_done = [response, done = std::move(done)](const Status& st) {
    if (!st.is_ok()) return done(st);
    done(std::move(*response));
  };
  stream(std::move(request), std::move(h));
}

void HttpClient::cancel_all() {
  asio::dispatch(executor_, [self = shared_from_this()] {
    self->impl_->idle.clear();
    std::vector<Exchange*> active(self->impl_->active.begin(), self->impl_->active.end());
    for (Exchange* ex : active) ex->cancel();
  });
}

size_t HttpClient::num_idle_connections() const { return impl_->idle.size(); }

Result<Response> fetch(const Url& url, Request request) {
  asio::io_context io;
  BATON_ASSIGN_OR_RETURN(auto client, HttpClient::create(io.get_executor(), url));
  request.target = url.target;
  std::optional<Result<Response>> out;
  client->send(std::move(request), [&out](Result<Response> r) { out.emplace(std::move(r)); });
  io.run();
  if (!out) return internal_error("fetch {}: no result", url.to_string());
  return std::move(*out);
}

Result<Response> fetch(std::string_view url, std::string_view method, std::string body, double timeout_s) {
  BATON_ASSIGN_OR_RETURN(auto parsed, parse_url(url));
  Request request;
  request.method = std::string(method);
  request.body = std::move(body);
  request.timeout_s = timeout_s;
  return fetch(parsed, std::move(request));
}

}  // namespace baton::http
