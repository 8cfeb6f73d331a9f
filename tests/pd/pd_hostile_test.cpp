// Issue 14's probes through a router in front of prefill and decode
// instances (all in-process): each ends in a 4xx for that client, and every
// one is still serving afterwards. (A decode stopped with SIGSTOP mid-stream
// is in pd_process_test.cpp.)
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

TEST(PdHostileTest, ProbesThroughTheProxy) {
  const std::string model = fixture_model("qwen3-tiny");
  auto prefill = start_instance(model, "prefill", "shm", {}, 512);
  auto decode = start_instance(model, "decode", "shm", {}, 512);
  ASSERT_TRUE(prefill && decode);
  auto router = start_router(*prefill, *decode);
  ASSERT_TRUE(router);
  RouterInstance& proxy = *router;
  ASSERT_EQ(post_completion(proxy.url(), completion_body(prompt_of(8), 2, false)).http_status, 200);

  // Refused by the proxy itself, or by the prefill, whose 400 the proxy passes on.
  const std::vector<std::pair<std::string, std::string>> probes = {
      {"/v1/completions", R"({"model": "m", "prompt": [5, 6], "temperature": 1e400})"},
      {"/v1/completions", R"({"model": "m", "prompt": [5, 6], "max_tokens": 1e30})"},
      {"/v1/completions", R"({"model": "m", "prompt": [5, 4294967296]})"},
      {"/v1/chat/completions",
       R"({"model": "m", "messages": [{"role": "user", "content": [{"type": 1, "text": "x"}]}]})"},
      {"/v1/completions", "{\"model\": \"m\", \"prompt\": \"\xff\xfe\"}"},
      {"/v1/completions",
       R"({"model": "m", "prompt": [5], "metadata": )" + std::string(100000, '[') + std::string(100000, ']') + "}"},
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
  EXPECT_TRUE(serving(*prefill));
  EXPECT_TRUE(serving(*decode));
  EXPECT_TRUE(serving(proxy));
  EXPECT_EQ(post_completion(proxy.url(), completion_body(prompt_of(12), 3, false)).http_status, 200);
  EXPECT_EQ(post_completion(proxy.url(), completion_body(prompt_of(12), 3, true)).http_status, 200);
}

}  // namespace
}  // namespace baton::pd_test
