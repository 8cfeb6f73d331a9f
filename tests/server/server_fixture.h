// An in-process ApiServer on a free port over a FakeEngine.
#pragma once

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "fake_engine.h"
#include "http_test_client.h"
#include "server/api_server.h"

namespace baton::testing {

class ServerFixture : public ::testing::Test {
 protected:
  void start_server(FakeEngine::Options engine_options, ApiServerOptions options) {
    engine_ = std::make_unique<FakeEngine>(engine_options);
    options.http.port = 0;
    options.http.num_io_threads = 2;
    if (options.service.served_model_name == "baton") options.service.served_model_name = "fake-model";
    server_ = std::make_unique<ApiServer>(*engine_, codec_, options);
    ASSERT_TRUE(server_->start().is_ok());
    port_ = server_->port();
  }
  void start_server() { start_server(FakeEngine::Options{}, default_options()); }
  static ApiServerOptions default_options() {
    ApiServerOptions o;
    o.http.limits.max_body_bytes = 64 * 1024;
    o.http.limits.header_timeout_s = 0.5;
    o.http.limits.idle_timeout_s = 2.0;
    o.shutdown_grace_s = 5.0;
    return o;
  }
  // The engine goes before the server: it may still hold output callbacks
  // that carry the server's executors, which must outlive them (ASan/UBSan
  // saw a strand destroyed after its io_context).
  void TearDown() override {
    if (server_) server_->shutdown();
    engine_.reset();
    server_.reset();
  }

  TestResponse post(const std::string& path, const Json& body, const std::vector<std::string>& headers = {}) {
    return http_call(port_, "POST", path, body.dump(), headers);
  }
  TestResponse get(const std::string& path) { return http_call(port_, "GET", path); }

  // Value of a metric series line "name{labels} value" in /metrics (-1 if absent).
  double metric(const std::string& series) {
    std::string text = get("/metrics").body;
    size_t p = text.find("\n" + series + " ");
    if (p == std::string::npos) return -1;
    return std::stod(text.substr(p + series.size() + 2));
  }

  FakeCodec codec_;
  std::unique_ptr<FakeEngine> engine_;
  std::unique_ptr<ApiServer> server_;
  int port_ = 0;
};

}  // namespace baton::testing
