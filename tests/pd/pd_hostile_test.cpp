// Issue 14's probes through a real proxy in front of real prefill and decode
// instances: each ends in a 4xx for that client, or (a decode stopped with
// SIGSTOP) an error within seconds, and every process is alive and serving
// afterwards.
#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "pd_cluster.h"

namespace baton::pd_test {
namespace {

struct Reply {
  int status = 0;
  std::string body;
};

Reply post_raw(const std::string& url, const std::string& target, const std::string& body) {
  auto r = http::fetch(url + target, "POST", body, 30.0);
  if (!r.is_ok()) return {0, r.status().to_string()};
  return {r->status, r->body};
}

// A streamed completion through `url`, with `stop` called once the client
// has received its first bytes of tokens (a 503 while a health check is
// late on a loaded machine is retried until the stream is under way); then
// how long the stream took to end.
struct StreamedCompletion {
  bool got_tokens = false;
  double waited_after_stop_s = 0;
  std::string raw;
};

StreamedCompletion stream_until_stopped(const std::string& url, const Json& body, const std::function<void()>& stop) {
  StreamedCompletion out;
  auto parsed = http::parse_url(url);
  if (!parsed.is_ok()) return out;
  for (int attempt = 0; attempt < 20 && !out.got_tokens; ++attempt) {
    boost::asio::io_context io;
    auto client = http::HttpClient::create(io.get_executor(), *parsed);
    if (!client.is_ok()) return out;
    std::mutex mu;
    std::condition_variable cv;
    bool got_tokens = false, done = false;
    int status = 0;
    std::string raw;
    (*client)->stream(http::Request{.target = "/v1/completions", .body = body.dump(), .timeout_s = 60.0},
                      {.on_headers = [&](int s, const std::vector<http::Header>&) { status = s; },
                       .on_data =
                           [&](std::string_view bytes) {
                             std::lock_guard<std::mutex> lock(mu);
                             raw.append(bytes);
                             if (status == 200 && raw.find("\"text\"") != std::string::npos) got_tokens = true;
                             cv.notify_all();
                           },
                       .on_done =
                           [&](const Status&) {
                             std::lock_guard<std::mutex> lock(mu);
                             done = true;
                             cv.notify_all();
                           }});
    std::thread runner([&] { io.run(); });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return got_tokens || done; });
    if (got_tokens) {
      out.got_tokens = true;
      lock.unlock();
      stop();
      Stopwatch sw;
      lock.lock();
      cv.wait(lock, [&] { return done; });
      out.waited_after_stop_s = sw.elapsed_s();
    }
    out.raw = raw;
    lock.unlock();
    runner.join();
    if (!out.got_tokens) std::this_thread::sleep_for(std::chrono::milliseconds(250));  // a 503: retry shortly
  }
  return out;
}

TEST(PdHostileTest, ProbesThroughTheProxyAndADecodeStoppedMidStream) {
  const std::string model = fixture_model("qwen3-tiny");
  std::string error;
  auto inst = spawn_all({serve_args(model, "prefill", {"--kv-transport", "shm"}, 512),
                         serve_args(model, "decode", {"--kv-transport", "shm"}, 512)},
                        &error);
  ASSERT_EQ(inst.size(), 2u) << error;
  Proc &prefill = *inst[0], &decode = *inst[1];
  std::vector<std::string> proxy_argv = proxy_args(prefill, decode);
  proxy_argv.insert(proxy_argv.end(), {"--upstream-idle-timeout-s", "2"});
  auto proxies = spawn_all({proxy_argv}, &error);
  ASSERT_EQ(proxies.size(), 1u) << error;
  Proc& proxy = *proxies[0];
  ASSERT_TRUE(wait_until([&] { return post_completion(proxy.url(), completion_body(prompt_of(8), 2, false))
                                          .http_status == 200; },
                         20.0));

  // Refused by the proxy itself, or by the prefill, whose 400 the proxy passes on.
  const std::vector<std::pair<std::string, std::string>> probes = {
      {"/v1/completions", R"({"model": "m", "prompt": [5, 6], "temperature": 1e400})"},
      {"/v1/completions", R"({"model": "m", "prompt": [5, 6], "max_tokens": 1e30})"},
      {"/v1/completions", R"({"model": "m", "prompt": [5, 4294967296]})"},
      {"/v1/chat/completions", R"({"model": "m", "messages": [{"role": "user", "content": [{"type": 1, "text": "x"}]}]})"},
      {"/v1/completions", "{\"model\": \"m\", \"prompt\": \"\xff\xfe\"}"},
      {"/v1/completions", R"({"model": "m", "prompt": [5], "metadata": )" + std::string(100000, '[') +
                              std::string(100000, ']') + "}"},
      {"/v1/\xff\xfe", "{}"},
  };
  for (const auto& [target, body] : probes) {
    Reply r = post_raw(proxy.url(), target, body);
    EXPECT_GE(r.status, 400) << body.substr(0, 120) << " -> " << r.body.substr(0, 300);
    EXPECT_LT(r.status, 500) << body.substr(0, 120) << " -> " << r.body.substr(0, 300);
    EXPECT_TRUE(parse_json(r.body).is_ok()) << r.body.substr(0, 300);
  }
  Reply chat = post_raw(proxy.url(), "/v1/chat/completions", std::get<1>(probes[3]));
  EXPECT_NE(chat.body.find("messages[0].content[0].type"), std::string::npos) << chat.body;
  EXPECT_TRUE(prefill.running()) << prefill.log();
  EXPECT_TRUE(decode.running()) << decode.log();
  EXPECT_TRUE(proxy.running()) << proxy.log();
  EXPECT_EQ(post_completion(proxy.url(), completion_body(prompt_of(12), 3, false)).http_status, 200);

  // A decode stopped mid-stream: the client's stream ends with an error in
  // seconds (the proxy's idle timeout), not at --request-timeout-s. The
  // decode is stopped only once the client has tokens: stopped before its
  // first byte, the proxy's first-byte timeout (20 s) would apply instead.
  const StreamedCompletion streamed = stream_until_stopped(proxy.url(), completion_body(prompt_of(30, 5), 4000, true),
                                                           [&] { decode.signal(SIGSTOP); });
  decode.signal(SIGCONT);
  EXPECT_TRUE(streamed.got_tokens) << streamed.raw.substr(0, 300);
  EXPECT_LT(streamed.waited_after_stop_s, 10.0) << streamed.raw.substr(0, 300) << "\nproxy log:\n" << proxy.log();
  EXPECT_NE(streamed.raw.find("stopped answering"), std::string::npos) << streamed.raw.substr(0, 600);
  // Resumed, the decode finds its client gone and aborts the request.
  EXPECT_TRUE(wait_until([&] { return metric(decode.url(), "baton:num_requests_running").value_or(-1) == 0; }, 10.0));
  EXPECT_TRUE(pool_fully_free(decode));
  EXPECT_EQ(post_completion(proxy.url(), completion_body(prompt_of(12), 3, true)).http_status, 200);
}

}  // namespace
}  // namespace baton::pd_test
