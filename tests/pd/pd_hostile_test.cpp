// Issue 14's probes through a real proxy in front of real prefill and decode
// instances: each ends in a 4xx for that client, or (a decode stopped with
// SIGSTOP) an error within seconds, and every process is alive and serving
// afterwards.
#include <gtest/gtest.h>

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
  // seconds (the proxy's idle timeout), not at --request-timeout-s.
  Completion result;
  std::thread client([&] {
    // Under a loaded machine a health check may time out and the proxy answer
    // 503 for a moment: try again until the stream is under way.
    for (int attempt = 0; attempt < 20; ++attempt) {
      result = post_completion(proxy.url(), completion_body(prompt_of(30, 5), 4000, true), 60.0);
      if (result.http_status == 200) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  });
  const bool streaming = wait_until([&] { return metric(decode.url(), "baton:num_requests_running").value_or(0) >= 1; },
                                    30.0);
  decode.signal(SIGSTOP);
  Stopwatch sw;
  client.join();
  const double waited_s = sw.elapsed_s();
  decode.signal(SIGCONT);
  EXPECT_TRUE(streaming);
  EXPECT_LT(waited_s, 10.0) << result.raw.substr(0, 300) << "\nproxy log:\n" << proxy.log();
  EXPECT_NE(result.error.find("stopped answering"), std::string::npos) << result.error;
  // Resumed, the decode finds its client gone and aborts the request.
  EXPECT_TRUE(wait_until([&] { return metric(decode.url(), "baton:num_requests_running").value_or(-1) == 0; }, 10.0));
  EXPECT_TRUE(pool_fully_free(decode));
  EXPECT_EQ(post_completion(proxy.url(), completion_body(prompt_of(12), 3, true)).http_status, 200);
}

}  // namespace
}  // namespace baton::pd_test
