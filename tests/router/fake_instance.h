// Fakes for the router tests: an instance speaking the PD protocol over a
// real HttpServer, and a router (RouterService + HttpServer) on a free port.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/json.h"
#include "http/http_client.h"
#include "http/http_server.h"
#include "router/router_service.h"
#include "router/upstream_clients.h"

namespace baton::router {

// A fake instance: records the bodies it got; prefill answers with
// kv_transfer_params; decode/agg answers a completion, streamed if asked.
class FakeInstance {
 public:
  // heartbeat_s: the SSE heartbeat of its streams (0: none, as a stopped process sends none).
  explicit FakeInstance(std::string name, double heartbeat_s = 0) : name_(std::move(name)) {
    HttpServerOptions opts;
    opts.port = 0;
    opts.num_io_threads = 1;
    opts.limits.event_heartbeat_s = heartbeat_s;
    server_ = std::make_unique<HttpServer>(
        opts, [this](HttpRequest req, std::shared_ptr<HttpExchange> ex) { handle(std::move(req), std::move(ex)); });
    EXPECT_TRUE(server_->start().is_ok());
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  std::vector<Json> bodies() {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }
  std::atomic<int> num_disconnects{0};
  std::atomic<bool> slow_stream{false};
  // Streams: the first event, then silence for `stall_s` before the rest
  // (a stopped process, or a busy one when heartbeats are on).
  std::atomic<double> stall_s{0};
  // Streams: no answer at all (not even headers) for 30 s.
  std::atomic<bool> no_headers{false};

 private:
  void handle(HttpRequest req, std::shared_ptr<HttpExchange> ex) {
    if (req.path == "/health") return ex->reply(HttpResponse{});
    Json body = Json::parse(req.body);
    {
      std::lock_guard<std::mutex> lock(mu_);
      bodies_.push_back(body);
    }
    const Json& kv = body["kv_transfer_params"];
    if (kv.is_object() && kv.value("do_remote_decode", false)) {
      HttpResponse r;
      r.body = Json{{"choices", {{{"text", "x"}}}},
                    {"kv_transfer_params",
                     {{"do_remote_prefill", true}, {"remote_engine_id", name_}, {"remote_block_ids", {3, 4}}}}}
                   .dump();
      return ex->reply(std::move(r));
    }
    std::string text = name_ + ":" + (kv.is_object() ? kv.value("remote_engine_id", "") : std::string("local"));
    if (!body.value("stream", false)) {
      HttpResponse r;
      r.body = Json{{"choices", {{{"text", text}, {"finish_reason", "length"}}}}}.dump();
      return ex->reply(std::move(r));
    }
    ex->set_disconnect_handler([this] { num_disconnects++; });
    if (no_headers) {
      auto timer = std::make_shared<boost::asio::steady_timer>(ex->executor(), std::chrono::seconds(30));
      timer->async_wait([timer, ex](const boost::system::error_code&) { ex->reply(HttpResponse{}); });
      return;
    }
    ex->start_events();
    if (stall_s > 0) {
      ex->send_event(Json{{"choices", {{{"text", "first"}}}}}.dump());
      auto timer = std::make_shared<boost::asio::steady_timer>(
          ex->executor(), std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(stall_s.load())));
      timer->async_wait([timer, ex](const boost::system::error_code&) {
        ex->send_event(Json{{"choices", {{{"text", "rest"}}}}}.dump());
        ex->send_event("[DONE]");
        ex->end_events();
      });
      return;
    }
    if (slow_stream) {
      // Never finishes: a client that goes away must cancel it.
      auto timer = std::make_shared<boost::asio::steady_timer>(ex->executor(), std::chrono::seconds(30));
      ex->send_event(Json{{"choices", {{{"text", "first"}}}}}.dump());
      timer->async_wait([timer, ex](const boost::system::error_code&) {
        if (!ex->disconnected()) ex->end_events();
      });
      return;
    }
    for (int i = 0; i < 3; ++i) ex->send_event(Json{{"choices", {{{"text", text + std::to_string(i)}}}}}.dump());
    ex->send_event("[DONE]");
    ex->end_events();
  }

  std::string name_;
  std::unique_ptr<HttpServer> server_;
  std::mutex mu_;
  std::vector<Json> bodies_;
};

class RouterFixture {
 public:
  RouterFixture(RouterMode mode, const std::string& policy = "round_robin")
      : RouterFixture(options_for(mode), make_routing_policy(policy).value()) {}
  RouterFixture(RouterServiceOptions opts, std::unique_ptr<RoutingPolicy> policy, HttpServerOptions hopts = {}) {
    service_ = std::make_shared<RouterService>(opts, pool, std::move(policy), clients_);
    hopts.port = 0;
    server_ = std::make_unique<HttpServer>(hopts, [this](HttpRequest req, std::shared_ptr<HttpExchange> ex) {
      service_->handle(std::move(req), std::move(ex));
    });
    EXPECT_TRUE(server_->start().is_ok());
  }
  ~RouterFixture() {
    server_->stop();
    clients_.stop();  // before server_ is destroyed: see UpstreamClients::stop
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  Result<http::Response> post(const std::string& path, const Json& body) {
    return http::fetch(url() + path, "POST", body.dump(), 10.0);
  }

  static RouterServiceOptions options_for(RouterMode mode) {
    RouterServiceOptions opts;
    opts.mode = mode;
    opts.request_timeout_s = 10.0;
    return opts;
  }

  InstancePool pool;
  std::shared_ptr<RouterService> service_;

 private:
  UpstreamClients clients_{1};
  std::unique_ptr<HttpServer> server_;
};

}  // namespace baton::router
