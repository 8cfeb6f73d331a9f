// The PD test cluster, in-process: agg, prefill and decode instances
// (instance::Instance) and routers (instance::RouterInstance) built in the
// test process itself over the local, shm or tcp KV transports, each on a
// free port. A router has run its first health round when it starts, so it
// routes at once. Plus small HTTP helpers: greedy completions (streamed or
// not) whose text, for models without a tokenizer, spells the token ids
// ("token_id:N" per token), and /metrics readers. Tests that need a peer as
// a real process (kill -9, SIGSTOP, SIGTERM) use support/test_process.h.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/json.h"
#include "http/http_client.h"
#include "instance/instance.h"
#include "instance/router_instance.h"
#include "support/wait.h"

namespace baton::pd_test {

using baton::testing::wait_until;
using instance::Instance;
using instance::InstanceOptions;
using instance::RouterInstance;
using instance::RouterOptions;

inline std::string fixture_model(const std::string& name) {
  return std::string(BATON_TEST_DATA) + "/fixtures/models/" + name;
}

// Changes to an instance's options on top of serve_options'.
using Tweak = std::function<void(InstanceOptions&)>;

// What the process tests ran as `baton serve --model MODEL
// --served-model-name m --port 0 --num-kv-blocks N --num-threads 1 --role ROLE`.
inline InstanceOptions serve_options(const std::string& model, const std::string& role, int num_kv_blocks = 64) {
  InstanceOptions o;
  o.engine.model = model;
  o.engine.num_threads = 1;
  o.engine.engine.num_kv_blocks = num_kv_blocks;
  o.server.served_model_name = "m";
  o.server.port = 0;
  o.pd.role = role;
  return o;
}

// A prefill or decode (or agg) over `transport`, with `tweak` applied.
inline std::unique_ptr<Instance> start_instance(const std::string& model, const std::string& role,
                                                const std::string& transport = "shm", const Tweak& tweak = {},
                                                int num_kv_blocks = 64) {
  InstanceOptions o = serve_options(model, role, num_kv_blocks);
  o.pd.kv_transport = transport;
  if (tweak) tweak(o);
  auto started = Instance::start(o);
  EXPECT_TRUE(started.is_ok()) << role << " over " << transport << ": " << started.status().to_string();
  return started.is_ok() ? std::move(started).value() : nullptr;
}

// What the process tests ran as `baton proxy --port 0 --mode pd --prefill P
// --decode D --health-interval-s 0.2`.
inline RouterOptions router_options(const std::string& prefill_url, const std::string& decode_url) {
  RouterOptions o;
  o.port = 0;
  o.mode = "pd";
  o.prefill = prefill_url;
  o.decode = decode_url;
  o.health_interval_s = 0.2;
  return o;
}

inline std::unique_ptr<RouterInstance> start_router(const RouterOptions& options) {
  auto started = RouterInstance::start(options);
  EXPECT_TRUE(started.is_ok()) << started.status().to_string();
  return started.is_ok() ? std::move(started).value() : nullptr;
}

template <class Prefill, class Decode>
std::unique_ptr<RouterInstance> start_router(const Prefill& prefill, const Decode& decode) {
  return start_router(router_options(prefill.url(), decode.url()));
}

struct Completion {
  int http_status = 0;
  std::string text;                 // concatenated choice text
  std::vector<std::string> tokens;  // logprobs.tokens: "token_id:N" without a tokenizer
  std::string error;                // error message (body or SSE event), "" if none
  std::string finish_reason;
  Json kv_transfer_params;  // from the final response / chunk
  std::string raw;
};

inline Json completion_body(const std::vector<int>& prompt, int max_tokens, bool stream) {
  return Json{{"model", "m"},     {"prompt", prompt},   {"max_tokens", max_tokens},
              {"temperature", 0}, {"ignore_eos", true}, {"stream", stream},
              {"logprobs", 0}};
}

inline Completion post_completion(const std::string& base_url, const Json& body, double timeout_s = 60.0) {
  Completion c;
  auto r = http::fetch(base_url + "/v1/completions", "POST", body.dump(), timeout_s);
  if (!r.is_ok()) {
    c.error = "transport: " + r.status().to_string();
    return c;
  }
  c.http_status = r->status;
  c.raw = r->body;
  const bool stream = body.value("stream", false);
  auto take = [&](const Json& j) {
    if (j.contains("error")) {
      c.error = j["error"].is_object() ? j["error"].value("message", j["error"].dump()) : j["error"].dump();
      return;
    }
    if (j.contains("choices") && !j["choices"].empty()) {
      const Json& ch = j["choices"][0];
      if (ch.contains("text") && ch["text"].is_string()) c.text += ch["text"].get<std::string>();
      if (ch.contains("finish_reason") && ch["finish_reason"].is_string()) c.finish_reason = ch["finish_reason"];
      if (ch.contains("logprobs") && ch["logprobs"].is_object() && ch["logprobs"].contains("tokens")) {
        for (const Json& t : ch["logprobs"]["tokens"]) c.tokens.push_back(t.get<std::string>());
      }
    }
    if (j.contains("kv_transfer_params")) c.kv_transfer_params = j["kv_transfer_params"];
  };
  if (!stream || r->status != 200) {
    Json j = Json::parse(r->body, nullptr, false);
    if (j.is_discarded()) {
      c.error = "unparsable body: " + r->body;
    } else {
      take(j);
    }
    return c;
  }
  std::istringstream lines(r->body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("data: ", 0) != 0) continue;
    std::string data = line.substr(6);
    if (data == "[DONE]") continue;
    Json j = Json::parse(data, nullptr, false);
    if (!j.is_discarded()) take(j);
  }
  return c;
}

// A metric's value (the first series whose name matches exactly); nullopt
// when absent or /metrics does not answer.
inline std::optional<double> metric(const std::string& base_url, const std::string& name) {
  auto r = http::fetch(base_url + "/metrics", "GET", {}, 10.0);
  if (!r.is_ok() || r->status != 200) return std::nullopt;
  std::istringstream lines(r->body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name, 0) != 0) continue;
    if (line.size() <= name.size() || (line[name.size()] != '{' && line[name.size()] != ' ')) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nullopt;
}

// Sends a request on a raw connection and returns the socket (the caller
// closes it to disconnect), or -1.
inline int open_request(int port, const Json& body) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  const std::string b = body.dump();
  const std::string req =
      "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(b.size()) + "\r\n\r\n" + b;
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// What a router sends a prefill instance; returns the kv_transfer_params.
template <class Node>
Json prefill_direct(const Node& prefill, const std::vector<int>& prompt) {
  Json body = completion_body(prompt, 1, false);
  body["kv_transfer_params"] = {{"do_remote_decode", true}};
  Completion c = post_completion(prefill.url(), body);
  EXPECT_EQ(c.http_status, 200) << c.raw;
  EXPECT_TRUE(c.kv_transfer_params.is_object()) << c.raw;
  return c.kv_transfer_params;
}

// A prefill request with streamed KV (stream_kv) whose answer is still
// open: `params` came in its first event, while the prompt computes. Its
// connection stays open (closing it aborts the prefill) until finish().
struct StreamedPrefill {
  int fd = -1;
  Json params;
  std::string raw;  // what the prefill sent so far
  StreamedPrefill() = default;
  StreamedPrefill(const StreamedPrefill&) = delete;
  StreamedPrefill& operator=(const StreamedPrefill&) = delete;
  ~StreamedPrefill() {
    if (fd >= 0) ::close(fd);
  }
  // Reads until `pred(raw)` holds or the prefill closes (10 s at most).
  bool read_until(const std::function<bool(const std::string&)>& pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    char buf[4096];
    while (!pred(raw)) {
      pollfd p{fd, POLLIN, 0};
      if (std::chrono::steady_clock::now() >= deadline || ::poll(&p, 1, 100) < 0) return false;
      if (!(p.revents & (POLLIN | POLLHUP))) continue;
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return pred(raw);
      raw.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
  // The rest of the prefill's answer (it ends with the prompt).
  bool finish() {
    return read_until([](const std::string& r) { return r.find("data: [DONE]") != std::string::npos; });
  }
};

template <class Node>
std::unique_ptr<StreamedPrefill> prefill_streamed(const Node& prefill, const std::vector<int>& prompt) {
  Json body = completion_body(prompt, 1, true);
  body["kv_transfer_params"] = {{"do_remote_decode", true}, {"stream_kv", true}};
  auto s = std::make_unique<StreamedPrefill>();
  s->fd = open_request(prefill.port(), body);
  EXPECT_GE(s->fd, 0);
  const std::string key = "\"kv_transfer_params\":";
  const bool got = s->read_until([&](const std::string& r) {
    const size_t at = r.find(key);
    return at != std::string::npos && r.find("\n\n", at) != std::string::npos;
  });
  EXPECT_TRUE(got) << s->raw;
  if (!got) return s;
  const size_t at = s->raw.find(key);
  const size_t begin = s->raw.rfind("data: ", at) + 6;
  Json chunk = Json::parse(s->raw.substr(begin, s->raw.find("\n", at) - begin), nullptr, false);
  if (!chunk.is_discarded() && chunk.contains("kv_transfer_params")) s->params = chunk["kv_transfer_params"];
  EXPECT_TRUE(s->params.is_object()) << s->raw;
  return s;
}

// What a router then sends the decode instance.
template <class Node>
Completion decode_direct(const Node& decode, const std::vector<int>& prompt, const Json& params, bool stream = false,
                         int max_tokens = 5) {
  Json body = completion_body(prompt, max_tokens, stream);
  body["kv_transfer_params"] = params;
  return post_completion(decode.url(), body);
}

// True once the node's block pool is entirely free again.
template <class Node>
bool pool_fully_free(const Node& node, double timeout_s = 5.0) {
  return wait_until(
      [&] {
        auto free = metric(node.url(), "baton:num_kv_blocks_free");
        auto total = metric(node.url(), "baton:num_kv_blocks_total");
        return free && total && *total > 0 && *free == *total;
      },
      timeout_s);
}

// True while the node answers GET /health with 200.
template <class Node>
bool serving(const Node& node) {
  auto r = http::fetch(node.url() + "/health", "GET", {}, 10.0);
  return r.is_ok() && r->status == 200;
}

template <class Node>
double counter(const Node& node, const std::string& name) {
  return metric(node.url(), name).value_or(-1);
}

inline std::vector<int> prompt_of(int n, int start = 1) {
  std::vector<int> p;
  for (int i = 0; i < n; ++i) p.push_back((start + i * 7) % 500 + 3);
  return p;
}

}  // namespace baton::pd_test
